"""`backendai-ruby`: the wrapper kernel driving Ruby 3.1, through the provisioner.

jupyter_kernel_test's conformance checks plus what the wrapper promises beyond them: state
across cells (locals, methods, classes), interrupts that keep the state, gets/input() as input
requests, display_data in its place in the output, and the per-cell output cap.
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


class BackendAIRubyKernelTests(lang_support.LanguageKernelTests):
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

    code_read_stdin = "gets"
    code_display_between_prints = "puts 'before'; display.html('<i>x</i>'); puts 'after'"
    code_display_svg_and_png = ("display.svg('<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>')\n"
                                f"display.png('{PNG_B64}'.unpack1('m'))")  # raw bytes are encoded too
    code_runaway_output = "50000.times { puts 'x' * 99 }"
    code_after, result_after = "'after'", '"after"'
    code_print_then_busy = "puts 'first'\nt = Time.now + 2\nnil while Time.now < t"

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
        assert self.input_requests[0]["prompt"] == "name? ", self.input_requests
        assert "hi Ada 37" in self.text_of(out), out
