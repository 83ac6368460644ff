# SPDX-License-Identifier: LGPL-3.0-or-later
"""`backendai-cpp`: the compile-and-run engine (kernels/compiled/) with g++, through the provisioner.

The compiled languages' shared tests (compiled_support: declarations kept and replaced,
statements in a generated main, whole programs, compile errors at the cell's line, magics, the
build cache, interrupts, stdin, displays, cap, streaming) with C++'s own declarations: classes,
templates, namespaces and overloads, which are kept apart by their parameter types.
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


class BackendAICppKernelTests(compiled_support.CompiledLanguageTests):
    kernel_name = "backendai-cpp"
    language_name = "c++"
    file_extension = ".cpp"

    code_hello_world = '#include <iostream>\nstd::cout << "hello, world" << std::endl;'
    code_stderr = '#include <iostream>\nstd::cerr << "test" << std::endl;'

    completion_samples = [
        {"text": "static_ca", "matches": {"static_cast"}},
        {"text": "namesp", "matches": {"namespace"}},
    ]
    complete_code_samples = ["1;", 'printf("hi\\n");', "int f(int x) {\n  return x * 2;\n}", "struct S { int a; };"]
    incomplete_code_samples = ["int f(int x) {", "class C {", "/* open comment", 'printf("a",', "#define TWICE(x) \\"]
    invalid_code_samples = ["int x = 1; }", "f(1]", '"unterminated\nstring"']

    code_generate_error = "int broken = ;"
    code_inspect_sample = "printf"
    code_display_data = [
        {"code": 'display_html("<b>test</b>");', "mime": "text/html"},
        {"code": 'display_svg("<svg xmlns=\\"http://www.w3.org/2000/svg\\"/>");', "mime": "image/svg+xml"},
        {"code": f'display_png("{PNG_C_LITERAL}", {PNG_SIZE});', "mime": "image/png"},
    ]
    flag_magic = "CXXFLAGS"
    links_libm_itself = True

    def test_cpp_declarations(self) -> None:
        """Classes, templates, namespaces and overloads kept across cells; a redefinition of one
        overload replaces that one only."""
        self.ok("#include <iostream>\n#include <vector>\n"
                "template <typename T> T twice_t(T x) { return x + x; }\n"
                "struct Counter { int n = 0; int bump() { return ++n; } };\n"
                "namespace geo { int area(int w, int h) { return w * h; } }\n"
                "double area(double r) { return 3.0 * r * r; }\nint area(int w, int h) { return w * h; }")
        out = self.ok("Counter c; c.bump();\nstd::vector<int> v{1, 2, 3};\n"
                      "std::cout << twice_t(21) << ' ' << c.bump() << ' ' << v.size() << ' '"
                      " << area(2, 3) << ' ' << area(1.0) << ' ' << geo::area(4, 5) << std::endl;")
        assert self.text_of(out) == "42 2 3 6 3 20\n", out
        self.ok("int area(int w, int h) { return w * h * 10; }")
        out = self.ok("std::cout << area(2, 3) << ' ' << area(1.0) << std::endl;")
        assert self.text_of(out) == "60 3\n", out

    def test_exceptions_fail_the_cell(self) -> None:
        reply, out = self.cell('#include <stdexcept>\nthrow std::runtime_error("boom");')
        assert reply["content"]["status"] == "error", reply["content"]
        assert "boom" in self.text_of(out, "stderr") + reply["content"]["evalue"] + "".join(reply["content"]["traceback"])
