# SPDX-License-Identifier: LGPL-3.0-or-later
"""Go's cell logic for the compile-and-run engine (pure: no compiler here; the kernel tests in
test_lang_go.py compile and run what this assembles)."""

from __future__ import annotations

from jupyter_backendai.kernels.compiled import go


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


def test_a_redefinition_replaces_the_old_declaration() -> None:
    st = go.GoState()
    st.add(1, go.split_cell("func f() int { return 1 }\nfunc g() int { return 2 }\nvar a, b = 1, 2\n"))
    st.add(2, go.split_cell("func f() int { return 10 }\nvar b = 3\n"))
    texts = [d.unit.text for d in st.decls]
    assert texts == ["func g() int { return 2 }", "func f() int { return 10 }", "var b = 3"]
    assert [d.cell for d in st.decls] == [1, 2, 2]


def test_program_maps_lines_and_tolerates_imports() -> None:
    st = go.GoState()
    st.add(1, go.split_cell('import (\n\t"os"\n\tm "math"\n)\nfunc half(x float64) float64 { return m.Floor(x / 2) }\n'))
    src = go.assemble(st, 2, go.split_cell('n := half(9)\nfmt.Println(n, strings.Repeat("-", 3))\n'))
    assert src.startswith("package main\n")
    # os is unused (blank import), math is used through its alias, fmt/strings are added.
    assert '\t_ "os"\n' in src and '\tm "math"\n' in src and '\t"fmt"\n' in src and '\t"strings"\n' in src
    assert "//line cell[1]:5:1\nfunc half" in src
    assert "//line cell[2]:1:1\nn := half(9)" in src
    assert "\t_ = n\n" in src  # no "declared and not used" for a cell's top-level variable
    assert src.index("func half") < src.index("func main() {")


def test_state_is_not_changed_by_assembling() -> None:
    st = go.GoState()
    go.assemble(st, 1, go.split_cell("func f() {}\n"))
    assert st.decls == []


def test_a_cell_with_main_is_a_whole_program() -> None:
    st = go.GoState()
    st.add(1, go.split_cell("func kept() {}\n"))
    units = go.split_cell('func main() {\n\tfmt.Println("hi")\n}\n')
    assert go.is_whole_program(units)
    src = go.assemble(st, 2, units)
    assert "kept" not in src and '"fmt"' in src and "//line cell[2]:1:1\nfunc main()" in src
    full = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println(1) }\n'
    units = go.split_cell(full)
    assert go.is_whole_program(units)
    assert go.assemble(st, 3, units) == ("//line cell[3]:1:1\npackage main\n//line cell[3]:3:1\nimport \"fmt\"\n"
                                         "//line cell[3]:5:1\nfunc main() { fmt.Println(1) }\n")


def test_compiler_output_and_is_complete() -> None:
    assert go.clean_compiler_output("# command-line-arguments\ncell[2]:1:1: undefined: y\n") == \
        "cell[2]:1:1: undefined: y\n"
    assert go.is_complete('fmt.Println("x")') == "complete"
    assert go.is_complete("func f() {") == "incomplete"
    assert go.is_complete("x := `abc") == "incomplete"
    assert go.is_complete("f())") == "invalid"


def test_completion() -> None:
    st = go.GoState()
    st.add(1, go.split_cell('import str "strings"\nfunc computeTotal() {}\n'))
    asked = []

    def members(path: str) -> list[str]:
        asked.append(path)
        return go.doc_members("package strings\nfunc Contains(s, substr string) bool\nfunc Count(s string) int\n"
                              "type Builder struct{ ... }\nfunc (b *Builder) Len() int\n")

    assert go.complete("str.Co", 6, st, members) == (["Contains", "Count"], 4, 6)
    assert asked == ["strings"]
    assert go.complete("math.", 5, st, lambda p: ["Abs", "Floor"] if p == "math" else []) == (["Abs", "Floor"], 5, 5)
    assert go.complete("computeT", 8, st, members) == (["computeTotal"], 0, 8)
    assert "append" in go.complete("app", 3, st, members)[0]
    assert go.complete("nosuch.X", 8, st, members) == ([], 8, 8)
