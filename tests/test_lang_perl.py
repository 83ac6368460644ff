"""`backendai-perl`: the wrapper kernel driving Perl 5.36, through the provisioner.

jupyter_kernel_test's conformance checks plus what the wrapper promises beyond them: state
across cells (top-level `my` variables included, also under `use strict`), interrupts that keep
the state, <STDIN>/input() as input requests, display_data in its place in the output, and the
per-cell output cap.
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


class BackendAIPerlKernelTests(lang_support.LanguageKernelTests):
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

    code_read_stdin = "my $l = <STDIN>;"
    code_display_between_prints = "print \"before\\n\"; display_html('<i>x</i>'); print \"after\\n\";"
    code_display_svg_and_png = ("display_svg('<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>');\n"
                                f"use MIME::Base64; display_png(decode_base64('{PNG_B64}'));")  # raw bytes too
    code_runaway_output = "print 'x' x 99, \"\\n\" for 1 .. 50000;"
    code_after, result_after = "'after'", '"after"'
    code_print_then_busy = "print \"first\\n\";\nmy $t = time + 2;\n1 while time < $t;"

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
