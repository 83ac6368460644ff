# SPDX-License-Identifier: LGPL-3.0-or-later
"""Go's cell logic for the compile-and-run engine (pure: no compiler here; the kernel tests in
test_lang_go.py compile and run what this assembles)."""

from __future__ import annotations

from jupyter_backendai.kernels.compiled import go
from jupyter_backendai.kernels.compiled.session import Session


def kinds(code: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(u.kind, u.names) for u in go.split_cell(code)]


def test_declarations_and_statements_are_told_apart() -> None:
    code = '''import "strings"

// Square squares.
func Square(x int) int {
	return x * x
}
type Point struct{ X, Y int }
func (p *Point) Norm2() int { return p.X*p.X + p.Y*p.Y }
var (
	counter = 3
	a, b    = 1, 2
)
const Pi2 = 6.28
fmt.Println(Square(4), strings.ToUpper("x"))
f := func(x int) int { return x }
for i := 0; i < 2; i++ {
	fmt.Println(i)
}
'''
    assert kinds(code) == [
        ("import", ()), ("decl", ("Square",)), ("decl", ("Point",)), ("decl", ("Point.Norm2",)),
        ("decl", ("counter", "a", "b")), ("decl", ("Pi2",)), ("stmt", ())]
    units = go.split_cell(code)
    assert units[0].imports == (("", "strings"),)
    assert units[1].text.startswith("// Square squares.") and units[1].line == 3
    assert units[-1].line == 14 and units[-1].text.endswith("}")


def test_brackets_in_strings_and_comments_do_not_count() -> None:
    code = 'func f() string {\n\treturn "}{" + `\n}` // }\n}\nx := f() /* { */\n'
    assert kinds(code) == [("decl", ("f",)), ("stmt", ())]


def test_groups_generics_and_continued_lines() -> None:
    code = 'type (\n\tA int\n\tB[T any] struct{ v T }\n)\nfunc Map[T, U any](xs []T, f func(T) U) []U { return nil }\nvar x, y = 1,\n\t2\n'
    assert kinds(code) == [("decl", ("A", "B")), ("decl", ("Map",)), ("decl", ("x", "y"))]


def session() -> Session:
    return Session(go.GO.syntax, go.GO.flag_magics)


def test_a_redefinition_replaces_the_old_declaration() -> None:
    s = session()
    s.commit(s.plan("func f() int { return 1 }\nfunc g() int { return 2 }\nvar a, b = 1, 2\n"))
    plan = s.plan("func f() int { return 10 }\nvar b = 3\n")
    assert plan.kind == "declare"
    s.commit(plan)
    assert [d.text for d in s.decls] == ["func f() int { return 10 }", "func g() int { return 2 }", "var b = 3"]
    assert [d.cell for d in s.decls] == [2, 1, 2]


def test_program_maps_lines_and_tolerates_imports() -> None:
    s = session()
    s.commit(s.plan('import (\n\t"os"\n\tm "math"\n)\nfunc half(x float64) float64 { return m.Floor(x / 2) }\n'))
    plan = s.plan('//% LDFLAGS -s\nn := half(9)\nfmt.Println(n, strings.Repeat("-", 3))\n')
    assert plan.kind == "run" and plan.flags.ldflags == ("-s",)
    src = plan.source
    assert src.startswith("package main\n")
    # os is unused (blank import), math is used through its alias, fmt/strings are added.
    assert '\t_ "os"\n' in src and '\tm "math"\n' in src and '\t"fmt"\n' in src and '\t"strings"\n' in src
    assert "//line <cell 1>:5:1\nfunc half" in src
    assert "//line <cell>:2:1\nn := half(9)" in src
    assert "\t_ = n\n" in src  # no "declared and not used" for a cell's top-level variable
    assert src.index("func half") < src.index("func main() {")
    # statements of a cell are not kept
    assert [d.cell for d in s.decls] == [1, 1]


def test_a_cell_with_main_is_a_whole_program() -> None:
    s = session()
    s.commit(s.plan("func kept() {}\n"))
    plan = s.plan('func main() {\n\tfmt.Println("hi")\n}\n')
    assert plan.kind == "program"
    assert "kept" not in plan.source and '"fmt"' in plan.source and "//line <cell>:1:1\nfunc main()" in plan.source
    full = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println(1) }\n'
    plan = s.plan(full)
    assert plan.kind == "program"
    assert plan.source == ('//line <cell>:1:1\npackage main\n//line <cell>:3:1\nimport "fmt"\n'
                           "//line <cell>:5:1\nfunc main() { fmt.Println(1) }\n")


def test_go_build_command_line() -> None:
    assert go.GO.compile_argv("cell.go", "prog", ("-gcflags=-N",), ("-X", "main.v=1")) == [
        "go", "build", "-o", "prog", "-gcflags=-N", "-ldflags=-X main.v=1", "cell.go"]
    assert go.GO.compile_argv("cell.go", None, (), ())[:4] == ["go", "build", "-o", "/dev/null"]


def test_compiler_output_and_is_complete() -> None:
    assert go.clean_compiler_output("# command-line-arguments\n<cell>:1:1: undefined: y\n") == \
        "<cell>:1:1: undefined: y\n"
    assert go.is_complete('fmt.Println("x")') == "complete"
    assert go.is_complete("func f() {") == "incomplete"
    assert go.is_complete("x := `abc") == "incomplete"
    assert go.is_complete("f())") == "invalid"


def test_completion() -> None:
    kept = ['import str "strings"', "func computeTotal() {}"]
    asked = []

    def members(path: str) -> list[str]:
        asked.append(path)
        return go.doc_members("package strings\nfunc Contains(s, substr string) bool\nfunc Count(s string) int\n"
                              "type Builder struct{ ... }\nfunc (b *Builder) Len() int\n")

    assert go.complete("str.Co", 6, kept, members) == (["Contains", "Count"], 4, 6)
    assert asked == ["strings"]
    assert go.complete("math.", 5, kept, lambda p: ["Abs", "Floor"] if p == "math" else []) == (["Abs", "Floor"], 5, 5)
    assert go.complete("computeT", 8, kept, members) == (["computeTotal"], 0, 8)
    assert "append" in go.complete("app", 3, kept, members)[0]
    assert go.complete("nosuch.X", 8, kept, members) == ([], 8, 8)
