"""`backendai-php`: the wrapper kernel driving php-cli, through the provisioner.

jupyter_kernel_test's conformance checks plus what the wrapper promises beyond them: state
across cells (variables, functions, classes), errors and warnings mapped to the cell's lines,
a redeclaration refused without losing the state, interrupts that keep the state,
input()/readline()/fgets(STDIN), display_data, and the per-cell output cap.
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


class BackendAIPHPKernelTests(jupyter_kernel_test.KernelTests):
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

    def completions(self, text: str) -> dict[str, Any]:
        self.flush_channels()
        self.kc.complete(text)
        return self.kc.get_shell_msg(timeout=10)

    def interrupt_running(self, code: str) -> None:
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
        self.flush_channels()
        msg_id = self.kc.execute("$answer = input('name? ');\n$age = (int)readline('age? ');\n"
                                 "$city = trim(fgets(STDIN));\necho \"hi $answer \" . ($age + 1) . \" $city\";",
                                 allow_stdin=True)
        for prompt, value in (("name? ", "Ada"), ("age? ", "36"), ("", "London")):
            req = self.kc.get_stdin_msg(timeout=20)
            assert req["msg_type"] == "input_request" and req["content"]["prompt"] == prompt, req
            self.kc.input(value)
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
        assert "hi Ada 37 London" in self.text_of(out), out

    def test_stdin_loop_ends_at_an_empty_answer(self) -> None:
        reply, out = self.run_with_answers("$got = [];\nwhile (($line = fgets(STDIN)) !== false) $got[] = trim($line);\n"
                                           "[$got, file_get_contents('php://stdin')]", ["a", "b", "", "c", "d", ""])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert self.result_of(out) == "[['a', 'b'], 'c\nd\n']", out

    def test_input_without_stdin_is_an_error(self) -> None:
        self.flush_channels()
        msg_id = self.kc.execute("input('x');", allow_stdin=False)
        reply = self.kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error", reply["content"]
        assert reply["content"]["ename"] == "StdinNotImplementedError", reply["content"]

    def test_display_svg_and_png(self) -> None:
        reply, out = self.cell("display_svg('<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>');\n"
                               f"display_png(base64_decode('{PNG_B64}'));")
        assert reply["content"]["status"] == "ok", reply
        shown = [m["content"]["data"] for m in out if m["msg_type"] == "display_data"]
        assert len(shown) == 2, out
        assert "<circle" in shown[0]["image/svg+xml"]
        assert shown[1]["image/png"] == PNG_B64

    def test_display_keeps_its_place_in_the_output(self) -> None:
        reply, out = self.cell("echo \"before\\n\"; display_html('<i>x</i>'); echo \"after\\n\";")
        assert reply["content"]["status"] == "ok", reply
        order = [("display" if m["msg_type"] == "display_data" else m["content"]["text"].strip())
                 for m in out if m["msg_type"] in ("stream", "display_data")]
        assert order == ["before", "display", "after"], order

    def test_runaway_output_is_capped(self) -> None:
        reply, out = self.cell("for ($i = 0; $i < 50000; $i++) echo str_repeat('x', 99), \"\\n\";", timeout=60)
        assert reply["content"]["status"] == "ok", reply
        shown = self.text_of(out)
        assert 900_000 <= len(shown) <= 1_000_000, len(shown)
        assert "output limit" in self.text_of(out, "stderr"), self.text_of(out, "stderr")[-300:]
        _, out = self.cell("'after'")  # the next cell starts with a fresh budget and nothing left over
        assert self.result_of(out) == "'after'" and not self.text_of(out), out

    def test_output_streams_while_running(self) -> None:
        """stdout arrives as it is written, not at the end of the cell."""
        self.flush_channels()
        msg_id = self.kc.execute("echo \"first\\n\"; $t = microtime(true); while (microtime(true) - $t < 1.5) {}")
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
