# SPDX-License-Identifier: LGPL-3.0-or-later
"""`backendai-c`: the compile-and-run engine (kernels/compiled/) with gcc, through the provisioner.

jupyter_kernel_test's conformance checks, lang_support's shared promises, compiled_support's: declarations kept and
replaced, statements in a generated main, whole programs, compile errors at the cell's line,
magics, the build cache, interrupts, stdin, displays, the output cap and streaming.
"""

from __future__ import annotations

from typing import Iterator

import pytest

import compiled_support
from compiled_support import PNG_C_LITERAL, PNG_SIZE
from conftest import Cluster, assert_no_leaks

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module", autouse=True)
def _on_cluster(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    assert_no_leaks(cluster)


class BackendAICKernelTests(compiled_support.CompiledLanguageTests):
    kernel_name = "backendai-c"
    language_name = "c"
    file_extension = ".c"

    code_hello_world = 'printf("hello, world\\n");'
    code_stderr = 'fputs("test\\n", stderr);'

    completion_samples = [
        {"text": "pri", "matches": {"printf"}},
        {"text": "whil", "matches": {"while"}},
        {"text": "fput", "matches": {"fputc", "fputc_unlocked", "fputs"}},
    ]
    complete_code_samples = ["1;", 'printf("hi\\n");', "int f(int x) {\n  return x * 2;\n}", "/* c */ int x;"]
    incomplete_code_samples = ["int f(int x) {", "for (int i = 0; i < 3; i++) {", "/* open comment",
                               'printf("a",', "#define TWICE(x) \\"]
    invalid_code_samples = ["int x = 1; }", "f(1]", '"unterminated\nstring"']

    code_generate_error = "int broken = ;"
    code_inspect_sample = "printf"
    code_display_data = [
        {"code": 'display_html("<b>test</b>");', "mime": "text/html"},
        {"code": 'display_svg("<svg xmlns=\\"http://www.w3.org/2000/svg\\"/>");', "mime": "image/svg+xml"},
        {"code": f'display_png("{PNG_C_LITERAL}", {PNG_SIZE});', "mime": "image/png"},
    ]

    def test_c_declarations(self) -> None:
        """Types, typedefs, prototypes, macros and globals kept across cells."""
        self.ok("#include <string.h>\n#define SQUARE(x) ((x) * (x))\nstruct point { int x, y; };\n"
                "typedef struct point point;\nstatic int calls;\nint norm2(point p);")
        self.ok("int norm2(point p) { calls++; return SQUARE(p.x) + SQUARE(p.y); }")
        out = self.ok("point p = {3, 4};\nint n = norm2(p);\nprintf(\"%d %d %zu\\n\", n, calls, strlen(\"abc\"));")
        assert self.text_of(out) == "25 1 3\n", out
        # a cell mixing a function with statements keeps the function, runs the statements
        out = self.ok("int cube(int x) { return x * x * x; }\nint c = cube(3);\nprintf(\"%d\\n\", c);")
        assert self.text_of(out) == "27\n", out
        assert self.text_of(self.ok('printf("%d\\n", cube(2));')) == "8\n"

    def test_own_header_in_the_working_directory(self) -> None:
        """`#include "mine.h"` finds the notebook's files; a cached build is redone when they change."""
        write = 'FILE *f = fopen("mine_h4.h", "w"); fputs("#define MINE VALUE\\n", f); fclose(f);'
        use = '//% VERBOSE\n#include "mine_h4.h"\nprintf("%d\\n", MINE);'
        self.ok(write.replace("VALUE", "1"))
        first, again = self.ok(use), self.ok(use)
        assert self.text_of(first) == self.text_of(again) == "1\n"
        assert "[build] cached build" in self.text_of(again, "stderr")
        self.ok(write.replace("VALUE", "2"))
        changed = self.ok(use)
        assert self.text_of(changed) == "2\n" and "[build] compiled" in self.text_of(changed, "stderr"), changed
