# SPDX-License-Identifier: LGPL-3.0-or-later
"""The compile-and-run engine's pure logic (kernels/compiled/session.py, runner's display
parser), without Docker or a compiler: how cells split, what is kept, what a build contains."""

from __future__ import annotations

import os
import select
import subprocess

import pytest

from jupyter_backendai.kernels.compiled.languages import LANGUAGES
from jupyter_backendai.kernels.compiled.runner import DisplayReader, _exited, _pidfd
from jupyter_backendai.kernels.compiled.session import (
    CURRENT, MagicError, Session, completion_prefix, header_declaration, is_complete, name_at, parse_magics,
    tokenize)

C = LANGUAGES["c"].syntax
CPP = LANGUAGES["cpp"].syntax


def kinds(syntax, code):
    return [(it.kind, code[it.start:it.end]) for it in syntax.split(code)]


def test_tokenizer_skips_comments_and_strings() -> None:
    toks = tokenize('int a; // x { \n/* } */ char *s = "};{"; char c = \'}\';\n#define X {\\\n }\n')
    texts = [t.text for t in toks]
    assert "{" not in texts and "}" not in texts[:-1]
    assert [t.kind for t in toks if t.kind == "pp"] == ["pp"]
    assert '"};{"' in texts and "'}'" in texts


def test_c_items_are_classified() -> None:
    code = ("#include <stdio.h>\nint add(int a, int b) { return a + b; }\nint g = 3, h[2] = {1, 2};\n"
            "struct P { int x; };\ntypedef struct P P;\nint f(int);\nsize_t n;\nFILE *fp;\n"
            "printf(\"%d\", add(1, 2));\nfor (int i = 0; i < 2; i++) { g++; }\n"
            "if (g) { g = 0; } else { g = 1; }\ndo { g--; } while (g > 0);\nx = 1")
    got = kinds(C, code)
    assert [k for k, _ in got] == ["pp", "func", "var", "type", "type", "proto", "var", "var",
                                   "stmt", "stmt", "stmt", "stmt", "stmt"]
    assert got[10][1].endswith("else { g = 1; }") and got[11][1].endswith("while (g > 0);")
    last = C.split(code)[-1]
    assert last.add_semicolon


def test_cpp_items_are_classified() -> None:
    code = ("#include <iostream>\nstd::cout << \"hi\" << std::endl;\n"
            "template <typename T> T sq(T x) { return x * x; }\nclass A { public: int v; };\n"
            "std::vector<int> v{1, 2};\nusing namespace std;\nusing Int = int;\n"
            "auto l = [](int a) { return a; };\n[]() { puts(\"x\"); }();\nnamespace ns { int q; }\n"
            "std::string s(\"x\");\nA a;\na.v = 1;\nint f(int x);\nint f(double y) { return 1; }")
    got = kinds(CPP, code)
    assert [k for k, _ in got] == ["pp", "stmt", "func", "type", "var", "decl", "type", "var", "stmt",
                                   "decl", "var", "var", "stmt", "proto", "func"]
    items = CPP.split(code)
    assert items[-1].keys == {"func:f(double)"} and items[-2].keys == {"proto:f(int)"}


def test_declarations_accumulate_and_a_redefinition_replaces() -> None:
    s = Session(C)
    p = s.plan("int twice(int x) { return 2 * x; }\nint g = 1;")
    assert p.kind == "declare"
    s.commit(p)
    p = s.plan("int twice(int x) { return 3 * x; }")
    s.commit(p)
    assert [d.text for d in s.decls] == ["int twice(int x) { return 3 * x; }", "int g = 1;"]
    p = s.plan("int local = twice(g);\nprintf(\"%d\", local);")
    assert p.kind == "run"
    # the statement cell's variable is a local of main; the kept ones come first with their cells
    assert p.source.index("int twice") < p.source.index("int main(") < p.source.index("int local")
    assert '#line 1 "<cell 2>"' in p.source and f'#line 1 "{CURRENT}"' in p.source
    s.commit(p)
    assert len(s.decls) == 2


def test_a_cell_that_does_not_build_is_not_kept() -> None:
    s = Session(C)
    s.commit(s.plan("int f(void) { return 1; }"))
    s.plan("int f(void) { return nope; }")  # planned, never committed (its build failed)
    assert s.decls[0].text == "int f(void) { return 1; }"


def test_whole_program_leaves_the_state_alone() -> None:
    s = Session(C)
    s.commit(s.plan("int f(void) { return 1; }"))
    p = s.plan("int main(void) {\n  return 0;\n}")
    assert p.kind == "program" and "int f" not in p.source
    assert p.source.startswith(f'#line 1 "{CURRENT}"\nint main')


def test_columns_and_lines_are_kept() -> None:
    s = Session(C)
    p = s.plan("int a = 1;\n\n   printf(\"%d\", a);")
    assert f'#line 3 "{CURRENT}"\n   printf' in p.source


def test_same_statement_cell_builds_the_same_source() -> None:
    """The build cache's key: a cell run again with the same declarations is the same program."""
    s = Session(C)
    s.commit(s.plan("int f(void) { return 1; }"))
    a, b = s.plan("printf(\"%d\", f());"), s.plan("printf(\"%d\", f());")
    assert a.source == b.source and a.cell != b.cell


def test_magics() -> None:
    code, flags = parse_magics("//% CFLAGS -O2 -DX='a b'\n//% LDFLAGS -lm\n//% ARGS 1 \"two words\"\nx();",
                               ("CFLAGS",))
    assert code == "\n\n\nx();"
    assert flags.cflags == ("-O2", "-DX=a b") and flags.ldflags == ("-lm",) and flags.args == ("1", "two words")
    with pytest.raises(MagicError):
        parse_magics("//% BOGUS 1\n")


def test_flags_of_kept_declarations_stay() -> None:
    s = Session(C)
    s.commit(s.plan("//% LDFLAGS -lm\n#include <math.h>\ndouble r(double x) { return cbrt(x); }"))
    p = s.plan("//% CFLAGS -O2\nprintf(\"%g\", r(8));")
    assert p.flags.ldflags == ("-lm",) and p.flags.cflags == ("-O2",)


@pytest.mark.parametrize("code,status", [
    ("int x = 1;", "complete"), ("int f() {", "incomplete"), ("/* open", "incomplete"),
    ("f(1,", "incomplete"), ("#define A \\", "incomplete"), ("x = 1; }", "invalid"), ("f(1]", "invalid"),
    ('"a\nb"', "invalid"), ('s = R"(})";', "complete"),
])
def test_is_complete(code: str, status: str) -> None:
    assert is_complete(code)[0] == status


def test_completion_prefix() -> None:
    assert completion_prefix("std::cou", 8) == (5, "cou")
    assert completion_prefix("x + ", 4) == (4, "")


def test_display_records() -> None:
    r = DisplayReader()
    blob = b"BAI1 1 image/svg+xml 6\n<svg/>BAI1 2 image/png 3\n\x89PN"
    assert r.feed(blob[:10]) == []
    frames = r.feed(blob[10:])
    assert frames[0] == {"type": "display", "data": {"image/svg+xml": "<svg/>"}, "metadata": {}, "sync": 1}
    assert frames[1]["data"] == {"image/png": "iVBO"} and frames[1]["sync"] == 2


def test_result_records_are_text() -> None:
    """A language whose cells have values (Rust's trailing expression) sends them as a record."""
    frames = DisplayReader().feed(b"BAI1 1 application/x-backendai-result 2\n42")
    assert frames[0]["data"] == {"application/x-backendai-result": "42"}


def test_inspect_helpers() -> None:
    assert name_at("x = twice(3)", 6) == "twice" and name_at("std::cout", 9) == "cout" and name_at("1 + ", 4) == ""
    s = Session(CPP)
    s.commit(s.plan("int f(int x) { return 1; }\nint f(double x) { return 2; }\nstruct P { int x; };\nint g;"))
    assert [d.text for d in s.declarations_of("f")] == ["int f(int x) { return 1; }", "int f(double x) { return 2; }"]
    assert [d.text for d in s.declarations_of("P")] == ["struct P { int x; };"] and s.declarations_of("x") == []
    header = ("extern void *malloc (size_t __size) __attribute__ ((__malloc__)) __attribute__ ((__alloc_size__ (1)))"
              " __wur;\nextern int abs (int __x) __THROW __attribute__ ((__const__)) ;")
    assert header_declaration(header, "malloc") == "extern void *malloc (size_t __size);"
    assert header_declaration(header, "abs") == "extern int abs (int __x);"
    assert header_declaration(header, "free") == ""


def test_a_program_exit_wakes_the_runner() -> None:
    """The runner's select wakes on the program's exit (a pidfd), not at its next poll tick."""
    proc = subprocess.Popen(["sh", "-c", "read line"], stdin=subprocess.PIPE)
    fd = _pidfd(proc.pid)
    assert fd is not None, "no pidfd here: every compiled cell would wait for the poll tick"
    try:
        assert select.select([fd], [], [], 0)[0] == [] and not _exited(proc.pid)
        proc.stdin.close()  # type: ignore[union-attr]
        assert select.select([fd], [], [], 30)[0] == [fd]
        assert _exited(proc.pid)  # and still there to be reaped
        assert proc.wait() == 1
    finally:
        os.close(fd)
