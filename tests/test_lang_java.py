# SPDX-License-Identifier: LGPL-3.0-or-later
"""`backendai-java`: the wrapper kernel driving JShell, through the provisioner.

jupyter_kernel_test's conformance checks plus what the wrapper promises beyond them: state
across cells, interrupts that keep the state, input() and System.in, display_data, and the
per-cell output cap.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

import jupyter_kernel_test
import pytest

from conftest import Cluster, assert_no_leaks

pytestmark = pytest.mark.docker

# 1x1 transparent PNG
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
PNG_JAVA = f'java.util.Base64.getDecoder().decode("{PNG_B64}")'


@pytest.fixture(scope="module", autouse=True)
def _on_cluster(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    assert_no_leaks(cluster)


class BackendAIJavaKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "backendai-java"
    language_name = "java"
    file_extension = ".jshell"

    code_hello_world = 'System.out.println("hello, world")'
    code_stderr = 'System.err.println("test")'

    completion_samples = [
        {"text": "Math.fl", "matches": {"floor(", "floorDiv(", "floorMod("}},
        {"text": "System.currentT", "matches": {"currentTimeMillis()"}},
        {"text": "java.util.ArrayL", "matches": {"ArrayList"}},
    ]
    complete_code_samples = ["1", 'System.out.println("hello, world");', "int f(int x) {\n    return x * 2;\n}"]
    incomplete_code_samples = ["int f(int x) {", "for (int i = 0; i < 3; i++) {", "class A {"]

    code_generate_error = 'throw new RuntimeException("boom")'
    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": "java.util.List.of(1, 2, 3)", "result": "[1, 2, 3]"},
        {"code": '"a" + "b"', "result": '"ab"'},
        {"code": 'System.getProperty("user.name")', "result": '"work"'},
    ]
    code_display_data = [
        {"code": 'display.html("<b>test</b>")', "mime": "text/html"},
        {"code": 'display.mime("image/svg+xml", "<svg xmlns=\'http://www.w3.org/2000/svg\'/>")', "mime": "image/svg+xml"},
        {"code": f"display.png({PNG_JAVA})", "mime": "image/png"},
    ]

    # ----- helpers --------------------------------------------------------------------------

    def cell(self, code: str, timeout: float = 30) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        self.flush_channels()
        reply, out = self.execute_helper(code, timeout=timeout)
        return reply, out

    @staticmethod
    def text_of(out: list[dict[str, Any]], name: str = "stdout") -> str:
        return "".join(m["content"]["text"] for m in out if m["msg_type"] == "stream" and m["content"]["name"] == name)

    @staticmethod
    def result_of(out: list[dict[str, Any]]) -> str | None:
        res = [m["content"]["data"]["text/plain"] for m in out if m["msg_type"] == "execute_result"]
        return res[0] if res else None

    # ----- beyond conformance ---------------------------------------------------------------

    def test_state_across_cells(self) -> None:
        reply, _ = self.cell("int counter = 40;\nfinal int step = 1;\nint bump() { counter += step; return counter; }\n"
                            "record P(int x) { }\nimport java.util.*;")
        assert reply["content"]["status"] == "ok", reply
        reply, out = self.cell("bump();\nbump()")
        assert reply["content"]["status"] == "ok", reply
        assert self.result_of(out) == "42", out
        reply, out = self.cell('"n" + counter + new P(step).x() + new ArrayList<>(List.of(5)).get(0)')
        assert self.result_of(out) == '"n4215"', out
        reply, out = self.cell("int quiet = 3;")  # a declaration is not an expression: no result
        assert reply["content"]["status"] == "ok" and self.result_of(out) is None, out

    def test_runtime_error_has_class_message_and_stack(self) -> None:
        reply, _ = self.cell("int inner(String s) { return s.length(); }\nint outer() { return inner(null); }")
        assert reply["content"]["status"] == "ok", reply
        reply, out = self.cell("outer()")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "java.lang.NullPointerException", c
        assert "length()" in c["evalue"], c
        frames = [line for line in c["traceback"] if line.strip().startswith("at ")]
        assert any("inner" in f for f in frames) and any("outer" in f for f in frames), c["traceback"]
        _, out = self.cell("1+1")  # the driver keeps working after a user error
        assert self.result_of(out) == "2"

    def test_compile_error_names_the_cell_line(self) -> None:
        reply, out = self.cell('int ok = 1;\nString s = "x";\nint bad = s * 2;')
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "CompilationError", c
        assert any("cell line 3" in line for line in c["traceback"]), c["traceback"]
        _, out = self.cell("ok")  # snippets before the bad one ran
        assert self.result_of(out) == "1", out

    def test_interrupt_keeps_state(self) -> None:
        self.cell('String kept = "still here";')
        for loop in ("while (true) { }", "Thread.sleep(60_000)"):
            self.flush_channels()
            msg_id = self.kc.execute(loop)
            time.sleep(1.0)
            t0 = time.monotonic()
            self.km.interrupt_kernel()
            reply = self.kc.get_shell_msg(timeout=10)
            elapsed = time.monotonic() - t0
            assert reply["parent_header"]["msg_id"] == msg_id
            assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "Interrupted", reply["content"]
            assert elapsed < 2.0, f"interrupt of {loop!r} took {elapsed:.2f} s: {reply['content']}"
            _, out = self.cell("kept")
            assert self.result_of(out) == '"still here"', out

    def _answer(self, code: str, answers: list[str], prompt: str) -> list[dict[str, Any]]:
        self.flush_channels()
        msg_id = self.kc.execute(code, allow_stdin=True)
        for a in answers:
            req = self.kc.get_stdin_msg(timeout=20)
            assert req["msg_type"] == "input_request" and req["content"]["prompt"] == prompt, req
            self.kc.input(a)
        reply = self.kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok", reply["content"]
        out = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            out.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        return out

    def test_input_request(self) -> None:
        out = self._answer('String answer = input("name? ");\nSystem.out.println("hi " + answer);', ["Ada"], "name? ")
        assert "hi Ada" in self.text_of(out), out

    def test_system_in_reads_are_input_requests(self) -> None:
        code = ("var sc = new Scanner(System.in);\nint a = sc.nextInt();\nint b = sc.nextInt();\n"
                "System.out.println(a + b);")
        self.cell("import java.util.Scanner;")
        out = self._answer(code, ["40", "2"], "")
        assert "42" in self.text_of(out), out

    def test_input_without_stdin_is_an_error(self) -> None:
        self.flush_channels()
        msg_id = self.kc.execute('input("x")', allow_stdin=False)
        reply = self.kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error", reply["content"]
        assert reply["content"]["ename"] == "StdinNotImplementedError", reply["content"]

    def test_display_svg_and_png(self) -> None:
        reply, out = self.cell('display.svg("<svg xmlns=\'http://www.w3.org/2000/svg\'><circle r=\'4\'/></svg>");\n'
                              f"display.png({PNG_JAVA});")
        assert reply["content"]["status"] == "ok", reply
        shown = [m["content"]["data"] for m in out if m["msg_type"] == "display_data"]
        assert len(shown) == 2, out
        assert "<circle" in shown[0]["image/svg+xml"]
        assert shown[1]["image/png"] == PNG_B64

    def test_display_keeps_its_place_in_the_output(self) -> None:
        reply, out = self.cell('System.out.println("before"); display.html("<i>x</i>"); System.out.println("after");')
        assert reply["content"]["status"] == "ok", reply
        order = [("display" if m["msg_type"] == "display_data" else m["content"]["text"].strip())
                 for m in out if m["msg_type"] in ("stream", "display_data")]
        assert order == ["before", "display", "after"], order

    def test_runaway_output_is_capped(self) -> None:
        reply, out = self.cell('for (int i = 0; i < 50000; i++) System.out.println("x".repeat(99));', timeout=60)
        assert reply["content"]["status"] == "ok", reply
        shown = self.text_of(out)
        assert 900_000 <= len(shown) <= 1_000_000, len(shown)
        assert "output limit" in self.text_of(out, "stderr"), self.text_of(out, "stderr")[-300:]
        _, out = self.cell('"after"')  # the next cell starts with a fresh budget and nothing left over
        assert self.result_of(out) == '"after"' and not self.text_of(out), out

    def test_output_streams_while_running(self) -> None:
        """stdout arrives as it is written, not at the end of the cell."""
        self.flush_channels()
        msg_id = self.kc.execute('System.out.println("first"); Thread.sleep(1500);')
        t0 = time.monotonic()
        first_at = None
        while True:
            msg = self.kc.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream" and "first" in msg["content"]["text"] and first_at is None:
                first_at = time.monotonic() - t0
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                done_at = time.monotonic() - t0
                break
        self.kc.get_shell_msg(timeout=10)
        assert first_at is not None and done_at - first_at > 1.0, (first_at, done_at)
