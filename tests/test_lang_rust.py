# SPDX-License-Identifier: LGPL-3.0-or-later
"""`backendai-rust`: the compile-and-run engine building cells with rustc 1.63, through the
provisioner.

jupyter_kernel_test's conformance checks plus: items kept across cells (a redefinition
replaces the old one), a cell's trailing expression as its result, a whole program with its
own main, compile errors and panics at the cell's lines, comment magics, interrupts within
2 s that keep the items, stdin reads as input requests, bai::display_svg/png/html in their
place among the output, the per-cell output cap, and output streaming while the program runs.
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

PNG_RS = "&[" + ", ".join(str(b) for b in base64.b64decode(PNG_B64)) + "]"


@pytest.fixture(scope="module", autouse=True)
def _on_cluster(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    assert_no_leaks(cluster)


class BackendAIRustKernelTests(lang_support.LanguageKernelTests):
    kernel_name = "backendai-rust"
    language_name = "rust"
    file_extension = ".rs"

    code_hello_world = 'println!("hello, world");'
    code_stderr = 'eprintln!("test");'

    completion_samples = [
        {"text": "prin", "matches": {"println!", "print!"}},
        {"text": "use std::collections::HashM", "matches": {"HashMap"}},
    ]
    complete_code_samples = ['println!("x");', "fn f(x: i32) -> i32 {\n    x * 2\n}", "let v = vec![1, 2];"]
    incomplete_code_samples = ["fn f(x: i32) -> i32 {", "for i in 0..3 {", 'let s = "abc', "println!(\"{}\","]
    invalid_code_samples = ["f());", "let v = vec![1, 2]];"]

    code_generate_error = 'let x: i32 = "text";'  # a compile error: the error reply alone
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": 'let s = String::from("ab");\ns + "c"', "result": '"abc"'},
        {"code": "vec![1, 2, 3]", "result": "[1, 2, 3]"},
    ]
    code_display_data = [
        {"code": 'bai::display_html("<b>test</b>");', "mime": "text/html"},
        {"code": 'bai::display_svg(r#"<svg xmlns="http://www.w3.org/2000/svg"/>"#);', "mime": "image/svg+xml"},
        {"code": f"bai::display_png({PNG_RS});", "mime": "image/png"},
    ]

    # ----- lang_support's shared promises ------------------------------------------------------
    timeout = 60  # a build takes longer than an eval
    code_read_stdin = 'let mut line = String::new();\nstd::io::stdin().read_line(&mut line).unwrap();\nprint!("{}", line);'
    code_display_between_prints = 'println!("before");\nbai::display_html("<i>x</i>");\nprintln!("after");'
    code_display_svg_and_png = ('bai::display_svg(r#"<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>"#);\n'
                                f"bai::display_png({PNG_RS});")
    code_runaway_output = 'let line = "x".repeat(99);\nfor _ in 0..50000 {\n    println!("{}", line);\n}'
    code_after = '"after"'
    result_after = '"after"'
    code_print_then_busy = 'println!("first");\nstd::thread::sleep(std::time::Duration::from_secs(2));'

    # ----- beyond conformance ---------------------------------------------------------------

    def test_items_are_kept_across_cells(self) -> None:
        reply, out = self.cell("#[derive(Debug, Clone, PartialEq)]\nstruct Point { x: i32, y: i32 }\n\n"
                               "impl Point {\n    fn sum(&self) -> i32 { self.x + self.y }\n}\n\n"
                               "const SCALE: i32 = 10;\nfn twice(x: i32) -> i32 { 2 * x }\n"
                               'println!("declared {}", Point { x: 1, y: 2 }.sum());')
        assert reply["content"]["status"] == "ok", reply
        assert self.text_of(out) == "declared 3\n", out
        reply, out = self.cell("use std::collections::HashMap;\nlet p = Point { x: 3, y: 4 };\n"
                               "let mut m = HashMap::new();\nm.insert(\"k\", twice(p.sum()) * SCALE);\nm[\"k\"]")
        assert reply["content"]["status"] == "ok", reply
        assert self.result_of(out) == "140" and "declared" not in self.text_of(out), out
        # a redefinition replaces the old one; the kept `use` still works
        reply, out = self.cell("fn twice(x: i32) -> i32 { 3 * x }\nlet m: HashMap<i32, i32> = HashMap::new();\n"
                               "(twice(Point { x: 1, y: 2 }.sum()), m.len())")
        assert self.result_of(out) == "(9, 0)", out
        # a value without Debug is no result (and no error)
        reply, out = self.cell("struct Opaque;\nOpaque")
        assert reply["content"]["status"] == "ok" and self.result_of(out) is None, out

    def test_whole_program_with_its_own_main(self) -> None:
        self.cell("fn helper_only_here() -> i32 { 1 }")
        reply, out = self.cell('use std::env;\n\nfn main() {\n    println!("whole {}", 42);\n}\n')
        assert reply["content"]["status"] == "ok", reply
        assert self.text_of(out) == "whole 42\n", out
        reply, out = self.cell('println!("after {}", helper_only_here());')
        assert self.text_of(out) == "after 1\n", out

    def test_compile_error_points_at_the_cell_line(self) -> None:
        reply, out = self.cell("let a = 1;\nprintln!(\"{}\", a);\nlet b: i32 = \"text\";")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "CompileError", c
        text = "\n".join(c["traceback"])
        assert c["evalue"].startswith("error[E0308]: mismatched types"), c
        assert re.search(r"--> <cell \d+>:3:14\n", text) and "\n3 | let b: i32" in text, text
        assert "cell.rs" not in text, text
        reply, _ = self.cell("fn broken() -> i32 { \"s\" }")
        assert reply["content"]["status"] == "error"
        reply, out = self.cell('println!("still fine");')
        assert reply["content"]["status"] == "ok" and self.text_of(out) == "still fine\n", out

    def test_panic_is_an_error_with_the_cell_line(self) -> None:
        reply, out = self.cell('let v: Vec<i32> = Vec::new();\nprintln!("before");\nprintln!("{}", v[3]);')
        c = reply["content"]
        assert c["status"] == "error", c
        assert self.text_of(out) == "before\n", out
        everything = self.text_of(out, "stderr") + "\n".join(c["traceback"]) + c["evalue"]
        assert "index out of bounds" in everything, (out, c)
        # the panic names the running cell's line, not the generated program's
        assert re.search(r"panicked at 'index out of bounds[^\n]*', <cell>:3:\d+", self.text_of(out, "stderr")), out

    def test_magics(self) -> None:
        reply, out = self.cell('//% ARGS alpha "beta gamma"\nlet a: Vec<String> = std::env::args().skip(1).collect();\na')
        assert reply["content"]["status"] == "ok", reply
        assert self.result_of(out) == '["alpha", "beta gamma"]', out
        reply, out = self.cell("//% CFLAGS -C opt-level=2 --cfg fast\n"
                               "fn mode() -> &'static str { if cfg!(fast) { \"fast\" } else { \"slow\" } }\nmode()")
        assert self.result_of(out) == '"fast"', out

    def test_interrupt_keeps_items(self) -> None:
        self.cell('const KEPT: &str = "still here";')
        self.interrupt_running('println!("running");\nloop {}', started="running")
        _, out = self.cell("KEPT")
        assert self.result_of(out) == '"still here"', out

    def test_stdin(self) -> None:
        reply, out = self.run_with_answers(
            'use std::io::{self, BufRead, Write};\nprint!("name? ");\nio::stdout().flush().unwrap();\n'
            "let mut name = String::new();\nio::stdin().read_line(&mut name).unwrap();\n"
            "let mut age = String::new();\nio::stdin().lock().read_line(&mut age).unwrap();\n"
            'println!("hi {} {}", name.trim(), age.trim().parse::<i32>().unwrap() + 1);',
            ["Ada", "36"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert self.text_of(out).startswith("name? hi Ada 37"), out
        assert len(self.input_requests) == 2, self.input_requests
