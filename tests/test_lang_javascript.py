"""`backendai-javascript`: the wrapper kernel driving Node.js, through the provisioner.

jupyter_kernel_test's conformance checks plus what the wrapper promises beyond them: state
across cells, interrupts that keep the state, input(), display_data, and the per-cell
output cap. The module fixture is the same as test_conformance.py's (cluster up before
setUpClass asks for the kernel; nothing left afterwards).
"""

from __future__ import annotations

from typing import Iterator

import pytest

import lang_support
from conftest import Cluster, assert_no_leaks
from lang_support import PNG_B64

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module", autouse=True)
def _on_cluster(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    assert_no_leaks(cluster)


class BackendAIJavaScriptKernelTests(lang_support.LanguageKernelTests):
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

    code_read_stdin = "input('x')"
    code_display_between_prints = "console.log('before'); display.html('<i>x</i>'); console.log('after')"
    code_display_svg_and_png = ("display.svg('<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>');"
                                f"display.png(Buffer.from('{PNG_B64}', 'base64'))")
    code_runaway_output = "for (let i = 0; i < 50000; i++) console.log('x'.repeat(99))"
    code_after, result_after = "'after'", "'after'"
    code_print_then_busy = "console.log('first'); const t = Date.now(); while (Date.now() - t < 1500) {}"

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
        self.interrupt_running("while (true) {}")
        _, out = self.cell("kept")
        assert self.result_of(out) == "'still here'", out

    def test_input_request(self) -> None:
        reply, out = self.run_with_answers("const answer = input('name? '); console.log('hi ' + answer)", ["Ada"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert [r["prompt"] for r in self.input_requests] == ["name? "], self.input_requests
        assert "hi Ada" in self.text_of(out), out
