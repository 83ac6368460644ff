"""`backendai-php`: the wrapper kernel driving php-cli, through the provisioner.

jupyter_kernel_test's conformance checks plus what the wrapper promises beyond them: state
across cells (variables, functions, classes), errors and warnings mapped to the cell's lines,
a redeclaration refused without losing the state, interrupts that keep the state,
input()/readline()/fgets(STDIN), display_data, and the per-cell output cap.
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


class BackendAIPHPKernelTests(lang_support.LanguageKernelTests):
    kernel_name = "backendai-php"
    language_name = "php"
    file_extension = ".php"

    code_hello_world = "echo 'hello, world';"
    code_stderr = "fwrite(STDERR, 'test');"

    completion_samples = [
        {"text": "str_re", "matches": {"str_repeat", "str_replace"}},
        {"text": "array_ke", "matches": {"array_key_exists", "array_key_first", "array_key_last", "array_keys"}},
        {"text": "PHP_VERS", "matches": {"PHP_VERSION", "PHP_VERSION_ID"}},
    ]
    complete_code_samples = ["1", "echo 'hello, world';", "function f($x) {\n    return $x * 2;\n}", "$a = [1, 2]"]
    incomplete_code_samples = ["function f($x) {", "foreach ($a as $v) {", "$s = 'abc", "echo strlen(", "$a = [1,"]
    invalid_code_samples = ["1 +* 2", "$1x = 2;", "f(1 2);", "}"]

    code_generate_error = "throw new Exception('boom');"
    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": "'a' . 'b'", "result": "'ab'"},
        {"code": "[1, 2, 3];", "result": "[1, 2, 3]"},
        {"code": "['k' => true, 'n' => null]", "result": "['k' => true, 'n' => NULL]"},
        {"code": "posix_getuid()", "result": "1000"},
    ]
    code_display_data = [
        {"code": "display_html('<b>test</b>');", "mime": "text/html"},
        {"code": "display('image/svg+xml', '<svg xmlns=\"http://www.w3.org/2000/svg\"/>');", "mime": "image/svg+xml"},
        {"code": f"display_png(base64_decode('{PNG_B64}'));", "mime": "image/png"},
    ]
    code_inspect_sample = "strlen"

    code_read_stdin = "input('x');"
    code_display_between_prints = "echo \"before\\n\"; display_html('<i>x</i>'); echo \"after\\n\";"
    code_display_svg_and_png = ("display_svg('<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>');\n"
                                f"display_png(base64_decode('{PNG_B64}'));")
    code_runaway_output = "for ($i = 0; $i < 50000; $i++) echo str_repeat('x', 99), \"\\n\";"
    code_after, result_after = "'after'", "'after'"
    code_print_then_busy = "echo \"first\\n\"; $t = microtime(true); while (microtime(true) - $t < 1.5) {}"

    # ----- beyond conformance ---------------------------------------------------------------

    def test_state_across_cells(self) -> None:
        reply, out = self.cell("$counter = 40; const STEP = 1;\nfunction bump() { global $counter; $counter += STEP;"
                               " return $counter; }\nclass P { public function __construct(public int $x) {} }")
        assert reply["content"]["status"] == "ok", reply
        assert self.result_of(out) is None, out  # declarations and assignments show nothing
        reply, out = self.cell("bump();\nbump()")
        assert reply["content"]["status"] == "ok", reply
        assert self.result_of(out) == "42"
        reply, out = self.cell("'n' . $counter . (new P(STEP))->x;")
        assert self.result_of(out) == "'n421'", out

    def test_error_has_name_value_and_traceback(self) -> None:
        reply, out = self.cell("function inner_fn() {\n  return intdiv(1, 0);\n}\ninner_fn();")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "DivisionByZeroError", c
        assert c["evalue"] == "Division by zero", c
        assert "<cell" in c["traceback"][1] and c["traceback"][1].endswith(":2"), c
        assert any(":4 inner_fn()" in line for line in c["traceback"]), c
        reply, out = self.cell("$a = 1;\n$b = = 2;")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "ParseError" and c["traceback"][1].endswith(":2"), c
        # a warning goes to stderr with the cell's line, and the cell goes on
        reply, out = self.cell("$u = 1;\necho $nope;\necho 'went on';")
        assert reply["content"]["status"] == "ok", reply
        assert "Undefined variable $nope" in self.text_of(out, "stderr"), out
        assert "<cell" in self.text_of(out, "stderr") and "line 2" in self.text_of(out, "stderr"), out
        assert "went on" in self.text_of(out), out
        # The driver keeps working after a user error.
        _, out = self.cell("1+1")
        assert self.result_of(out) == "2"

    def test_redeclaration_is_refused_and_state_kept(self) -> None:
        self.cell("function once() { return 'first'; }\n$kept_too = 7;")
        reply, _ = self.cell("function once() { return 'second'; }")
        c = reply["content"]
        assert c["status"] == "error" and "Cannot redeclare function once()" in c["evalue"], c
        _, out = self.cell("once() . $kept_too")
        assert self.result_of(out) == "'first7'", out

    def test_completion_of_user_values(self) -> None:
        self.cell("$record_alpha = 1; $record_alps = 2; class Shape { const SIDES = 4;"
                  " public static function square() {} public function area() {} }\n$sq = new Shape();")
        reply = self.completions("$record_al")
        assert set(reply["content"]["matches"]) == {"$record_alpha", "$record_alps"}, reply["content"]
        reply = self.completions("Shape::s")
        assert set(reply["content"]["matches"]) == {"SIDES", "square"}, reply["content"]
        reply = self.completions("$sq->ar")
        assert reply["content"]["matches"] == ["area"], reply["content"]

    def test_interrupt_keeps_state(self) -> None:
        self.cell("$kept = 'still here';")
        self.interrupt_running("while (true) {}")
        _, out = self.cell("$kept")
        assert self.result_of(out) == "'still here'", out
        self.interrupt_running("sleep(30);")  # a blocking call, and a second interrupt
        _, out = self.cell("$kept")
        assert self.result_of(out) == "'still here'", out

    def test_input_request(self) -> None:
        reply, out = self.run_with_answers("$answer = input('name? ');\n$age = (int)readline('age? ');\n"
                                           "$city = trim(fgets(STDIN));\necho \"hi $answer \" . ($age + 1) . \" $city\";",
                                           ["Ada", "36", "London"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert [r["prompt"] for r in self.input_requests] == ["name? ", "age? ", ""], self.input_requests
        assert "hi Ada 37 London" in self.text_of(out), out

    def test_stdin_loop_ends_at_an_empty_answer(self) -> None:
        reply, out = self.run_with_answers("$got = [];\nwhile (($line = fgets(STDIN)) !== false) $got[] = trim($line);\n"
                                           "[$got, file_get_contents('php://stdin')]", ["a", "b", "", "c", "d", ""])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert self.result_of(out) == "[['a', 'b'], 'c\nd\n']", out
