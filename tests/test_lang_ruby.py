"""`backendai-ruby`: the wrapper kernel driving Ruby 3.1, through the provisioner.

jupyter_kernel_test's conformance checks plus what the wrapper promises beyond them: state
across cells (locals, methods, classes), interrupts that keep the state, gets/input() as input
requests, display_data in its place in the output, and the per-cell output cap.
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


class BackendAIRubyKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "backendai-ruby"
    language_name = "ruby"
    file_extension = ".rb"

    code_hello_world = "puts 'hello, world'"
    code_stderr = "$stderr.puts 'test'"

    completion_samples = [
        {"text": "Math.sq", "matches": {"sqrt"}},
        {"text": "Comparabl", "matches": {"Comparable"}},
    ]
    complete_code_samples = ["1", "puts 'hello, world'", "def f(x)\n  x * 2\nend", "x = [1, 2]"]
    incomplete_code_samples = ["def f(x)", "if true", "[1, 2,", "s = \"abc", "foo(1,"]
    invalid_code_samples = ["end", "x = )", "def 1x; end"]

    code_generate_error = "raise 'boom'"
    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": "'a' + 'b'", "result": '"ab"'},
        {"code": "[1, 2, 3]", "result": "[1, 2, 3]"},
        {"code": "{a: 1}", "result": "{:a=>1}"},
    ]
    code_display_data = [
        {"code": "display.html('<b>test</b>')", "mime": "text/html"},
        {"code": "display('image/svg+xml', '<svg xmlns=\"http://www.w3.org/2000/svg\"/>')", "mime": "image/svg+xml"},
        {"code": f"display.png('{PNG_B64}')", "mime": "image/png"},
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

    def interrupt_running(self, code: str) -> dict[str, Any]:
        self.flush_channels()
        msg_id = self.kc.execute(code)
        time.sleep(0.5)
        t0 = time.monotonic()
        self.km.interrupt_kernel()
        reply = self.kc.get_shell_msg(timeout=10)
        elapsed = time.monotonic() - t0
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "Interrupted", reply["content"]
        assert elapsed < 2.0, f"interrupt took {elapsed:.2f} s"
        return reply

    def run_with_answers(self, code: str, answers: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run a cell that reads stdin, answering its input requests in turn."""
        self.flush_channels()
        msg_id = self.kc.execute(code, allow_stdin=True)
        for value in answers:
            req = self.kc.get_stdin_msg(timeout=20)
            assert req["msg_type"] == "input_request", req
            self.kc.input(value)
        reply = self.kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id, reply
        out = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            out.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        return reply, out

    # ----- beyond conformance ---------------------------------------------------------------

    def test_state_across_cells(self) -> None:
        reply, _ = self.cell("counter = 40\ndef bump(by = 1) = $total = (($total || 0) + by)\n"
                             "class Point\n  attr_reader :x\n  def initialize(x) = @x = x\nend\nLABEL = 'n'")
        assert reply["content"]["status"] == "ok", reply
        reply, out = self.cell("bump(40); bump(2)")
        assert reply["content"]["status"] == "ok", reply
        assert self.result_of(out) == "42", out
        _, out = self.cell("\"#{LABEL}#{counter + 2}#{Point.new(1).x}\"")
        assert self.result_of(out) == '"n421"', out
        # a value by name is shown even when nil; the nil of puts is not
        _, out = self.cell("unset = nil\nunset")
        assert self.result_of(out) == "nil", out
        _, out = self.cell("puts 'x'")
        assert self.result_of(out) is None and self.text_of(out) == "x\n", out

    def test_error_has_name_value_and_traceback(self) -> None:
        reply, out = self.cell("def inner = nil + 1\ninner")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "NoMethodError", c
        assert "undefined method `+' for nil" in c["evalue"], c
        assert any("<cell " in line and ":1:in `inner'" in line for line in c["traceback"]), c
        assert not any("ruby_driver" in line for line in c["traceback"]), c
        reply, out = self.cell("x = 1\ny = = 2")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "SyntaxError" and ":2:" in c["evalue"], c
        _, out = self.cell("1+1")  # the driver keeps working after a user error
        assert self.result_of(out) == "2"

    def test_completion_of_user_values(self) -> None:
        self.cell("record = {alpha: 1}\ngreeting = 'hi'\ndef greet_all = nil")
        reply = self.completions("greeting.upc")
        assert {"upcase", "upcase!"} <= set(reply["content"]["matches"]), reply["content"]
        reply = self.completions("gree")
        assert {"greeting", "greet_all"} <= set(reply["content"]["matches"]), reply["content"]

    def completions(self, text: str) -> dict[str, Any]:
        self.flush_channels()
        self.kc.complete(text)
        return self.kc.get_shell_msg(timeout=10)

    def test_interrupt_keeps_state(self) -> None:
        self.cell("kept = 'still here'")
        self.interrupt_running("loop {}")
        _, out = self.cell("kept")
        assert self.result_of(out) == '"still here"', out
        self.interrupt_running("sleep 100")  # a blocking call, and a second interrupt
        _, out = self.cell("kept")
        assert self.result_of(out) == '"still here"', out

    def test_input_request(self) -> None:
        reply, out = self.run_with_answers("name = input('name? ')\nprint 'age? '\nage = gets.to_i\n"
                                           "puts \"hi #{name} #{age + 1}\"", ["Ada", "36"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert "hi Ada 37" in self.text_of(out), out

    def test_input_prompt(self) -> None:
        self.flush_channels()
        self.kc.execute("input('name? ')", allow_stdin=True)
        req = self.kc.get_stdin_msg(timeout=20)
        assert req["content"]["prompt"] == "name? ", req
        self.kc.input("x")
        assert self.kc.get_shell_msg(timeout=20)["content"]["status"] == "ok"

    def test_input_without_stdin_is_an_error(self) -> None:
        self.flush_channels()
        msg_id = self.kc.execute("gets", allow_stdin=False)
        reply = self.kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error", reply["content"]
        assert reply["content"]["ename"] == "StdinNotImplementedError", reply["content"]

    def test_display_svg_and_png(self) -> None:
        reply, out = self.cell("display.svg('<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>')\n"
                               f"display.png('{PNG_B64}'.unpack1('m'))")  # raw bytes are encoded too
        assert reply["content"]["status"] == "ok", reply
        shown = [m["content"]["data"] for m in out if m["msg_type"] == "display_data"]
        assert len(shown) == 2, out
        assert "<circle" in shown[0]["image/svg+xml"]
        assert shown[1]["image/png"] == PNG_B64

    def test_display_keeps_its_place_in_the_output(self) -> None:
        reply, out = self.cell("puts 'before'; display.html('<i>x</i>'); puts 'after'")
        assert reply["content"]["status"] == "ok", reply
        order = [("display" if m["msg_type"] == "display_data" else m["content"]["text"].strip())
                 for m in out if m["msg_type"] in ("stream", "display_data")]
        assert order == ["before", "display", "after"], order

    def test_runaway_output_is_capped(self) -> None:
        reply, out = self.cell("50000.times { puts 'x' * 99 }", timeout=60)
        assert reply["content"]["status"] == "ok", reply
        shown = self.text_of(out)
        assert 900_000 <= len(shown) <= 1_000_000, len(shown)
        assert "output limit" in self.text_of(out, "stderr"), self.text_of(out, "stderr")[-300:]
        _, out = self.cell("'after'")  # the next cell starts with a fresh budget and nothing left over
        assert self.result_of(out) == '"after"' and not self.text_of(out), out

    def test_output_streams_while_running(self) -> None:
        """stdout arrives as it is written, not at the end of the cell."""
        self.flush_channels()
        msg_id = self.kc.execute("puts 'first'\nt = Time.now + 2\nnil while Time.now < t")
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
        assert first_at is not None and done_at - first_at > 0.9, (first_at, done_at)
