"""`backendai-javascript`: the wrapper kernel driving Node.js, through the provisioner.

jupyter_kernel_test's conformance checks plus what the wrapper promises beyond them: state
across cells, interrupts that keep the state, input(), display_data, and the per-cell
output cap. The module fixture is the same as test_conformance.py's (cluster up before
setUpClass asks for the kernel; nothing left afterwards).
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


@pytest.fixture(scope="module", autouse=True)
def _on_cluster(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    assert_no_leaks(cluster)


class BackendAIJavaScriptKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "backendai-javascript"
    language_name = "javascript"
    file_extension = ".js"

    code_hello_world = "console.log('hello, world')"
    code_stderr = "console.error('test')"

    completion_samples = [
        {"text": "Math.fl", "matches": {"floor"}},
        {"text": "JSO", "matches": {"JSON"}},
        {"text": "process.vers", "matches": {"version", "versions"}},
    ]
    complete_code_samples = ["1", "console.log('hello, world')", "function f(x) {\n  return x * 2;\n}"]
    incomplete_code_samples = ["function f(x) {", "for (let i = 0; i < 3; i++) {", "`abc", "console.log(1,"]
    invalid_code_samples = ["1 +* 2", "let 1x = 2", "f(1 2)"]

    code_generate_error = "throw new Error('boom')"
    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": "[1, 2, 3].map(n => n * n)", "result": "[ 1, 4, 9 ]"},
        {"code": "'a' + 'b'", "result": "'ab'"},
        {"code": "process.getuid()", "result": "1000"},
    ]
    code_display_data = [
        {"code": "display.html('<b>test</b>')", "mime": "text/html"},
        {"code": "display('image/svg+xml', '<svg xmlns=\"http://www.w3.org/2000/svg\"/>')", "mime": "image/svg+xml"},
        {"code": f"display.png(Buffer.from('{PNG_B64}', 'base64'))", "mime": "image/png"},
    ]
    code_inspect_sample = "Math"

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
        reply, _ = self.cell("let counter = 40; const step = 1; function bump() { counter += step; return counter; }"
                            "\nvar label = 'n'; class P { constructor(x) { this.x = x; } }")
        assert reply["content"]["status"] == "ok", reply
        reply, out = self.cell("bump(); bump()")
        assert reply["content"]["status"] == "ok", reply
        assert self.result_of(out) == "42"
        reply, out = self.cell("label + counter + new P(step).x")
        assert self.result_of(out) == "'n421'", out

    def test_error_has_name_value_and_traceback(self) -> None:
        reply, out = self.cell("function inner() { null.x }\ninner()")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "TypeError", c
        assert "null" in c["evalue"] and any("<cell" in line for line in c["traceback"]), c
        # The driver keeps working after a user error.
        _, out = self.cell("1+1")
        assert self.result_of(out) == "2"

    def test_interrupt_keeps_state(self) -> None:
        self.cell("let kept = 'still here'")
        self.flush_channels()
        msg_id = self.kc.execute("while (true) {}")
        time.sleep(0.5)
        t0 = time.monotonic()
        self.km.interrupt_kernel()
        reply = self.kc.get_shell_msg(timeout=10)
        elapsed = time.monotonic() - t0
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "Interrupted", reply["content"]
        assert elapsed < 2.0, f"interrupt took {elapsed:.2f} s"
        _, out = self.cell("kept")
        assert self.result_of(out) == "'still here'", out

    def test_input_request(self) -> None:
        self.flush_channels()
        msg_id = self.kc.execute("const answer = input('name? '); console.log('hi ' + answer)", allow_stdin=True)
        req = self.kc.get_stdin_msg(timeout=20)
        assert req["msg_type"] == "input_request" and req["content"]["prompt"] == "name? ", req
        self.kc.input("Ada")
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
        assert "hi Ada" in self.text_of(out), out

    def test_input_without_stdin_is_an_error(self) -> None:
        self.flush_channels()
        msg_id = self.kc.execute("input('x')", allow_stdin=False)
        reply = self.kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error", reply["content"]
        assert reply["content"]["ename"] == "StdinNotImplementedError", reply["content"]

    def test_display_svg_and_png(self) -> None:
        reply, out = self.cell("display.svg('<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>');"
                              f"display.png(Buffer.from('{PNG_B64}', 'base64'))")
        assert reply["content"]["status"] == "ok", reply
        shown = [m["content"]["data"] for m in out if m["msg_type"] == "display_data"]
        assert len(shown) == 2, out
        assert "<circle" in shown[0]["image/svg+xml"]
        assert shown[1]["image/png"] == PNG_B64

    def test_display_keeps_its_place_in_the_output(self) -> None:
        reply, out = self.cell("console.log('before'); display.html('<i>x</i>'); console.log('after')")
        assert reply["content"]["status"] == "ok", reply
        order = [("display" if m["msg_type"] == "display_data" else m["content"]["text"].strip())
                 for m in out if m["msg_type"] in ("stream", "display_data")]
        assert order == ["before", "display", "after"], order

    def test_runaway_output_is_capped(self) -> None:
        reply, out = self.cell("for (let i = 0; i < 50000; i++) console.log('x'.repeat(99))", timeout=60)
        assert reply["content"]["status"] == "ok", reply
        shown = self.text_of(out)
        assert 900_000 <= len(shown) <= 1_000_000, len(shown)
        assert "output limit" in self.text_of(out, "stderr"), self.text_of(out, "stderr")[-300:]
        _, out = self.cell("'after'")  # the next cell starts with a fresh budget and nothing left over
        assert self.result_of(out) == "'after'" and not self.text_of(out), out

    def test_output_streams_while_running(self) -> None:
        """stdout arrives as it is written, not at the end of the cell."""
        self.flush_channels()
        msg_id = self.kc.execute("console.log('first'); const t = Date.now(); while (Date.now() - t < 1500) {}")
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
