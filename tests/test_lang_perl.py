"""`backendai-perl`: the wrapper kernel driving Perl 5.36, through the provisioner.

jupyter_kernel_test's conformance checks plus what the wrapper promises beyond them: state
across cells (top-level `my` variables included, also under `use strict`), interrupts that keep
the state, <STDIN>/input() as input requests, display_data in its place in the output, and the
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


@pytest.fixture(scope="module", autouse=True)
def _on_cluster(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    assert_no_leaks(cluster)


class BackendAIPerlKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "backendai-perl"
    language_name = "perl"
    file_extension = ".pl"

    code_hello_world = 'print "hello, world\\n";'
    code_stderr = 'print STDERR "test\\n";'

    completion_samples = [
        {"text": "subst", "matches": {"substr"}},
        {"text": "Data::Dum", "matches": {"Dumper::"}},
    ]
    complete_code_samples = ["1;", "print 'hi';", "sub f {\n  return 2;\n}", "my @x = (1, 2);"]
    incomplete_code_samples = ["sub f {", "for my $i (1..3) {", "my $s = \"abc", "print(1,", "if (1) {"]
    invalid_code_samples = ["1 2", "x = )", "my 1x = 2;"]

    code_generate_error = "die 'boom';"
    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": "'a' . 'b'", "result": '"ab"'},
        {"code": "[1, 2, 3]", "result": "[1,2,3]"},
        {"code": "(1, 'two')", "result": '(1, "two")'},
    ]
    code_display_data = [
        {"code": "display_html('<b>test</b>');", "mime": "text/html"},
        {"code": "display('image/svg+xml' => '<svg xmlns=\"http://www.w3.org/2000/svg\"/>');", "mime": "image/svg+xml"},
        {"code": f"display_png('{PNG_B64}');", "mime": "image/png"},
    ]
    code_inspect_sample = "Data::Dumper"

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
        reply, _ = self.cell("my $counter = 40;\nmy ($label, @list) = ('n', 1, 2);\nsub bump { $counter += shift }\n"
                             "package Point { sub new { my ($c, $x) = @_; bless {x => $x}, $c } sub x { $_[0]{x} } }")
        assert reply["content"]["status"] == "ok", reply
        reply, out = self.cell("bump(2)")
        assert reply["content"]["status"] == "ok", reply
        assert self.result_of(out) == "42", out
        # top-level `my` names survive into a strict cell; `my` inside blocks stays local
        reply, out = self.cell("use strict;\n{ my $hidden = 1; }\n$label . ($counter + @list) . Point->new(1)->x")
        assert reply["content"]["status"] == "ok", reply["content"]
        assert self.result_of(out) == '"n441"', out
        reply, _ = self.cell("use strict; $hidden")
        assert reply["content"]["status"] == "error" and "hidden" in reply["content"]["evalue"], reply["content"]
        # a statement done for its effect shows no value
        _, out = self.cell("print 'x'")
        assert self.result_of(out) is None and self.text_of(out) == "x", out

    def test_error_has_name_value_and_traceback(self) -> None:
        reply, _ = self.cell("sub inner { die \"bad input\\n\" }\ninner();")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "Died" and c["evalue"] == "bad input", c
        reply, _ = self.cell("my $x = 1;\nmy $y = = 2;")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "SyntaxError" and "cell[" in c["evalue"] and "line 2" in c["evalue"], c
        reply, _ = self.cell("die { code => 7 };")
        assert reply["content"]["ename"] == "HASH", reply["content"]
        _, out = self.cell("1+1")  # the driver keeps working after a user error
        assert self.result_of(out) == "2"

    def test_completion_of_user_values(self) -> None:
        self.cell("our $greeting = 'hi'; my %record = (a => 1); sub greet_all { 1 }")
        assert self.completions("$gree")["content"]["matches"] == ["greeting"]
        assert self.completions("%rec")["content"]["matches"] == ["record"]
        assert "greet_all" in self.completions("gree")["content"]["matches"]

    def completions(self, text: str) -> dict[str, Any]:
        self.flush_channels()
        self.kc.complete(text)
        return self.kc.get_shell_msg(timeout=10)

    def test_interrupt_keeps_state(self) -> None:
        self.cell("my $kept = 'still here';")
        self.interrupt_running("1 while 1;")
        _, out = self.cell("$kept")
        assert self.result_of(out) == '"still here"', out
        self.interrupt_running("sleep 100;")  # a blocking call, and a second interrupt
        _, out = self.cell("$kept")
        assert self.result_of(out) == '"still here"', out

    def test_input_request(self) -> None:
        reply, out = self.run_with_answers("my $name = input('name? ');\nprint 'age? ';\nmy $age = <STDIN>;\nchomp $age;\n"
                                           "print \"hi $name \", $age + 1, \"\\n\";", ["Ada", "36"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert "hi Ada 37" in self.text_of(out), out

    def test_stdin_loop_ends_at_an_empty_answer(self) -> None:
        reply, out = self.run_with_answers("my @got;\nwhile (my $l = <STDIN>) { chomp $l; push @got, $l }\n\\@got",
                                           ["a", "b", ""])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert self.result_of(out) == '["a","b"]', out

    def test_input_without_stdin_is_an_error(self) -> None:
        self.flush_channels()
        msg_id = self.kc.execute("my $l = <STDIN>;", allow_stdin=False)
        reply = self.kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error", reply["content"]
        assert reply["content"]["ename"] == "StdinNotImplementedError", reply["content"]

    def test_display_svg_and_png(self) -> None:
        reply, out = self.cell("display_svg('<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>');\n"
                               "use MIME::Base64; display_png(decode_base64('" + PNG_B64 + "'));")  # raw bytes too
        assert reply["content"]["status"] == "ok", reply
        shown = [m["content"]["data"] for m in out if m["msg_type"] == "display_data"]
        assert len(shown) == 2, out
        assert "<circle" in shown[0]["image/svg+xml"]
        assert shown[1]["image/png"] == PNG_B64

    def test_display_keeps_its_place_in_the_output(self) -> None:
        reply, out = self.cell("print \"before\\n\"; display_html('<i>x</i>'); print \"after\\n\";")
        assert reply["content"]["status"] == "ok", reply
        order = [("display" if m["msg_type"] == "display_data" else m["content"]["text"].strip())
                 for m in out if m["msg_type"] in ("stream", "display_data")]
        assert order == ["before", "display", "after"], order

    def test_runaway_output_is_capped(self) -> None:
        reply, out = self.cell("print 'x' x 99, \"\\n\" for 1 .. 50000;", timeout=60)
        assert reply["content"]["status"] == "ok", reply
        shown = self.text_of(out)
        assert 900_000 <= len(shown) <= 1_000_000, len(shown)
        assert "output limit" in self.text_of(out, "stderr"), self.text_of(out, "stderr")[-300:]
        _, out = self.cell("'after'")  # the next cell starts with a fresh budget and nothing left over
        assert self.result_of(out) == '"after"' and not self.text_of(out), out

    def test_output_streams_while_running(self) -> None:
        """stdout arrives as it is written, not at the end of the cell."""
        self.flush_channels()
        msg_id = self.kc.execute("print \"first\\n\";\nmy $t = time + 2;\n1 while time < $t;")
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
