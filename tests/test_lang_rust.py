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
import time
from typing import Any, Iterator

import jupyter_kernel_test
import pytest

from conftest import Cluster, assert_no_leaks

pytestmark = pytest.mark.docker

# 1x1 transparent PNG
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
PNG_RS = "&[" + ", ".join(str(b) for b in base64.b64decode(PNG_B64)) + "]"


@pytest.fixture(scope="module", autouse=True)
def _on_cluster(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    assert_no_leaks(cluster)


class BackendAIRustKernelTests(jupyter_kernel_test.KernelTests):
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

    # ----- helpers --------------------------------------------------------------------------

    def cell(self, code: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        self.flush_channels()
        return self.execute_helper(code, timeout=timeout)

    @staticmethod
    def text_of(out: list[dict[str, Any]], name: str = "stdout") -> str:
        return "".join(m["content"]["text"] for m in out if m["msg_type"] == "stream" and m["content"]["name"] == name)

    @staticmethod
    def result_of(out: list[dict[str, Any]]) -> str | None:
        res = [m["content"]["data"]["text/plain"] for m in out if m["msg_type"] == "execute_result"]
        return res[0] if res else None

    def interrupt_running(self, code: str) -> dict[str, Any]:
        self.flush_channels()
        msg_id = self.kc.execute(code)
        # Wait until the program runs (its first line printed), not just while it compiles.
        while True:
            msg = self.kc.get_iopub_msg(timeout=60)
            if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream"
                    and "running" in msg["content"]["text"]):
                break
        t0 = time.monotonic()
        self.km.interrupt_kernel()
        reply = self.kc.get_shell_msg(timeout=10)
        elapsed = time.monotonic() - t0
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "Interrupted", reply["content"]
        assert elapsed < 2.0, f"interrupt took {elapsed:.2f} s"
        return reply

    def run_with_answers(self, code: str, answers: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]], list]:
        """Run a cell that reads stdin, answering its input requests in turn."""
        self.flush_channels()
        msg_id = self.kc.execute(code, allow_stdin=True)
        requests = []
        for value in answers:
            req = self.kc.get_stdin_msg(timeout=60)
            assert req["msg_type"] == "input_request", req
            requests.append(req["content"])
            self.kc.input(value)
        reply = self.kc.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id, reply
        out = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            out.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        return reply, out, requests

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

    def test_magics(self) -> None:
        reply, out = self.cell('//% ARGS alpha "beta gamma"\nlet a: Vec<String> = std::env::args().skip(1).collect();\na')
        assert reply["content"]["status"] == "ok", reply
        assert self.result_of(out) == '["alpha", "beta gamma"]', out
        reply, out = self.cell("//% CFLAGS -C opt-level=2 --cfg fast\n"
                               "fn mode() -> &'static str { if cfg!(fast) { \"fast\" } else { \"slow\" } }\nmode()")
        assert self.result_of(out) == '"fast"', out

    def test_interrupt_keeps_items(self) -> None:
        self.cell('const KEPT: &str = "still here";')
        self.interrupt_running('println!("running");\nloop {}')
        _, out = self.cell("KEPT")
        assert self.result_of(out) == '"still here"', out

    def test_stdin(self) -> None:
        reply, out, reqs = self.run_with_answers(
            'use std::io::{self, BufRead, Write};\nprint!("name? ");\nio::stdout().flush().unwrap();\n'
            "let mut name = String::new();\nio::stdin().read_line(&mut name).unwrap();\n"
            "let mut age = String::new();\nio::stdin().lock().read_line(&mut age).unwrap();\n"
            'println!("hi {} {}", name.trim(), age.trim().parse::<i32>().unwrap() + 1);',
            ["Ada", "36"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert self.text_of(out).startswith("name? hi Ada 37"), out
        assert len(reqs) == 2, reqs

    def test_display_svg_and_png_in_order(self) -> None:
        reply, out = self.cell('println!("before");\n'
                               'bai::display_svg(r#"<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>"#);\n'
                               f"bai::display_png({PNG_RS});\n"
                               'println!("after");')
        assert reply["content"]["status"] == "ok", reply
        order = [("display" if m["msg_type"] == "display_data" else m["content"]["text"].strip())
                 for m in out if m["msg_type"] in ("stream", "display_data")]
        assert order == ["before", "display", "display", "after"], order
        shown = [m["content"]["data"] for m in out if m["msg_type"] == "display_data"]
        assert "<circle" in shown[0]["image/svg+xml"]
        assert shown[1]["image/png"] == PNG_B64

    def test_runaway_output_is_capped(self) -> None:
        reply, out = self.cell('let line = "x".repeat(99);\nfor _ in 0..50000 {\n    println!("{}", line);\n}',
                               timeout=120)
        assert reply["content"]["status"] == "ok", reply
        shown = self.text_of(out)
        assert 900_000 <= len(shown) <= 1_000_000, len(shown)
        assert "output limit" in self.text_of(out, "stderr"), self.text_of(out, "stderr")[-300:]
        _, out = self.cell('println!("after");')
        assert self.text_of(out) == "after\n", out

    def test_output_streams_while_running(self) -> None:
        self.flush_channels()
        msg_id = self.kc.execute('println!("first");\nstd::thread::sleep(std::time::Duration::from_secs(2));\n'
                                 'println!("second");')
        t0 = time.monotonic()
        first_at = None
        while True:
            msg = self.kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream" and "first" in msg["content"]["text"] and first_at is None:
                first_at = time.monotonic() - t0
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                done_at = time.monotonic() - t0
                break
        self.kc.get_shell_msg(timeout=10)
        assert first_at is not None and done_at - first_at > 1.5, (first_at, done_at)
