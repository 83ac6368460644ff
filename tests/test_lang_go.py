# SPDX-License-Identifier: LGPL-3.0-or-later
"""`backendai-go`: the compile-and-run engine building cells with Go 1.19, through the provisioner.

jupyter_kernel_test's conformance checks plus: declarations kept across cells (a redefinition
replaces the old one), a whole program with its own main, compile errors and panics at the
cell's lines, comment magics, interrupts within 2 s that keep the declarations, stdin reads as
input requests, bai.DisplaySVG/PNG/HTML in their place among the output, the per-cell output
cap, and output streaming while the program runs.
"""

from __future__ import annotations

import base64
import re
from typing import Iterator

import pytest

import lang_support
from conftest import Cluster, assert_no_leaks
from lang_support import PNG_B64

pytestmark = pytest.mark.docker

PNG_GO = "[]byte{" + ", ".join(str(b) for b in base64.b64decode(PNG_B64)) + "}"


@pytest.fixture(scope="module", autouse=True)
def _on_cluster(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    assert_no_leaks(cluster)


class BackendAIGoKernelTests(lang_support.LanguageKernelTests):
    kernel_name = "backendai-go"
    language_name = "go"
    file_extension = ".go"

    code_hello_world = 'fmt.Println("hello, world")'
    code_stderr = 'fmt.Fprintln(os.Stderr, "test")'

    completion_samples = [
        {"text": "strings.ToU", "matches": {"ToUpper", "ToUpperSpecial"}},
        {"text": "fmt.Sprin", "matches": {"Sprint", "Sprintf", "Sprintln"}},
        {"text": "appe", "matches": {"append"}},
    ]
    complete_code_samples = ['fmt.Println("x")', "func f(x int) int {\n\treturn x * 2\n}", "x := []int{1, 2}"]
    incomplete_code_samples = ["func f(x int) int {", "for i := 0; i < 3; i++ {", "s := `abc", "fmt.Println(1,"]
    invalid_code_samples = ["f())", "x := []int{1, 2}}"]

    code_generate_error = "fmt.Println(undefinedName)"  # a compile error: the error reply alone
    code_display_data = [
        {"code": 'bai.DisplayHTML("<b>test</b>")', "mime": "text/html"},
        {"code": 'bai.DisplaySVG(`<svg xmlns="http://www.w3.org/2000/svg"/>`)', "mime": "image/svg+xml"},
        {"code": f"bai.DisplayPNG({PNG_GO})", "mime": "image/png"},
    ]

    # ----- lang_support's shared promises ------------------------------------------------------
    timeout = 60  # a build takes longer than an eval
    code_read_stdin = 'line, _ := bufio.NewReader(os.Stdin).ReadString(\'\\n\')\nfmt.Print(line)'
    code_display_between_prints = 'fmt.Println("before")\nbai.DisplayHTML("<i>x</i>")\nfmt.Println("after")'
    code_display_svg_and_png = ('bai.DisplaySVG(`<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>`)\n'
                                f"bai.DisplayPNG({PNG_GO})")
    code_runaway_output = 'line := strings.Repeat("x", 99)\nfor i := 0; i < 50000; i++ {\n\tfmt.Println(line)\n}'
    code_after = 'fmt.Println("after")'  # Go has no cell values: the cell prints it
    result_after = None
    code_print_then_busy = 'fmt.Println("first")\ntime.Sleep(2 * time.Second)'

    # ----- beyond conformance ---------------------------------------------------------------

    def test_declarations_are_kept_across_cells(self) -> None:
        reply, out = self.cell("type Point struct{ X, Y int }\n\nfunc (p Point) Sum() int { return p.X + p.Y }\n\n"
                               "var origin = Point{1, 2}\n\nconst scale = 10\n\nfunc twice(x int) int { return 2 * x }\n"
                               'fmt.Println("declared", origin.Sum())')
        assert reply["content"]["status"] == "ok", reply
        assert self.text_of(out) == "declared 3\n", out
        reply, out = self.cell('p := Point{3, 4}\nfmt.Println(twice(p.Sum()) * scale, strings.Repeat("ab", 2))')
        assert reply["content"]["status"] == "ok", reply
        assert self.text_of(out) == "140 abab\n", out
        # statements of earlier cells do not run again
        assert "declared" not in self.text_of(out)
        # a redefinition replaces the old one
        reply, out = self.cell("func twice(x int) int { return 3 * x }\nfmt.Println(twice(origin.Sum()))")
        assert self.text_of(out) == "9\n", out

    def test_whole_program_with_its_own_main(self) -> None:
        self.cell("func helperOnlyHere() int { return 1 }")
        reply, out = self.cell('package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("whole", 42)\n}\n')
        assert reply["content"]["status"] == "ok", reply
        assert self.text_of(out) == "whole 42\n", out
        reply, out = self.cell("func main() {\n\tfmt.Println(\"no package clause\")\n}")
        assert self.text_of(out) == "no package clause\n", out
        # a whole program's main is not kept: the next statement cell has its own main
        reply, out = self.cell('fmt.Println("after", helperOnlyHere())')
        assert self.text_of(out) == "after 1\n", out

    def test_compile_error_points_at_the_cell_line(self) -> None:
        reply, out = self.cell('a := 1\nfmt.Println(a)\nfmt.Println(undefinedName)')
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "CompileError", c
        assert re.fullmatch(r"<cell \d+>:3:13: undefined: undefinedName", c["evalue"]), c
        assert any(c["evalue"] in t for t in c["traceback"]), c
        # a failed cell's declarations are not kept
        reply, _ = self.cell("func broken() int { return \"s\" }")
        assert reply["content"]["status"] == "error"
        reply, out = self.cell('fmt.Println("still fine")')
        assert reply["content"]["status"] == "ok" and self.text_of(out) == "still fine\n", out

    def test_panic_is_an_error_with_the_cell_line(self) -> None:
        reply, out = self.cell('xs := []int{}\nfmt.Println("before")\nfmt.Println(xs[3])')
        c = reply["content"]
        assert c["status"] == "error", c
        assert self.text_of(out) == "before\n", out
        assert "index out of range" in self.text_of(out, "stderr") + "\n".join(c["traceback"]) + c["evalue"]
        # the stack trace names the running cell's lines
        assert re.search(r"\t<cell>:3 ", self.text_of(out, "stderr")), (out, c)

    def test_magics(self) -> None:
        reply, out = self.cell('//% ARGS alpha "beta gamma"\nfmt.Println(len(os.Args)-1, os.Args[1], os.Args[2])')
        assert reply["content"]["status"] == "ok", reply
        assert self.text_of(out) == "2 alpha beta gamma\n", out
        reply, out = self.cell('//% LDFLAGS -X main.stamp=v42\nvar stamp string\nfmt.Println("stamp", stamp)')
        assert self.text_of(out) == "stamp v42\n", out

    def test_interrupt_keeps_declarations(self) -> None:
        self.cell('var kept = "still here"')
        self.interrupt_running('fmt.Println("running")\nfor {\n}', started="running")
        _, out = self.cell("fmt.Println(kept)")
        assert self.text_of(out) == "still here\n", out

    def test_stdin(self) -> None:
        reply, out = self.run_with_answers(
            'r := bufio.NewReader(os.Stdin)\nfmt.Print("name? ")\nname, _ := r.ReadString(\'\\n\')\n'
            'var age int\nfmt.Scan(&age)\nfmt.Printf("hi %s %d\\n", strings.TrimSpace(name), age+1)',
            ["Ada", "36"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert self.text_of(out).startswith("name? hi Ada 37"), out
        assert len(self.input_requests) == 2, self.input_requests
