# SPDX-License-Identifier: LGPL-3.0-or-later
"""`backendai-bash`: the wrapper kernel driving one long-lived bash, through the provisioner.

jupyter_kernel_test's conformance checks plus what the wrapper promises beyond them: state
across cells (variables, functions, working directory), a non-zero last status as an error,
an exiting shell replaced, interrupts that stop the whole cell and keep the shell, blocked
reads of stdin as input requests (read -p/-s, other programs), display helpers, and the
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


class BackendAIBashKernelTests(lang_support.LanguageKernelTests):
    kernel_name = "backendai-bash"
    language_name = "bash"
    file_extension = ".sh"

    code_hello_world = "echo 'hello, world'"
    code_stderr = "echo test >&2"

    completion_samples = [
        {"text": "compge", "matches": {"compgen"}},
        {"text": "echo $BASH_VERSI", "matches": {"$BASH_VERSINFO", "$BASH_VERSION"}},
        {"text": "ls /us", "matches": {"/usr/"}},
    ]
    complete_code_samples = ["echo hi", "if true; then echo y; fi", "f() {\n  echo x\n}", "x=1",
                             "cat <<EOF\nabc\nEOF"]
    incomplete_code_samples = ["if true; then", "for i in 1 2; do", "echo 'abc", "f() {", "cat <<EOF\nabc",
                               "echo a |", "echo a \\"]
    invalid_code_samples = ["echo )", "fi", "done", "if then fi"]

    code_generate_error = "false"
    code_display_data = [
        {"code": "display_html '<b>test</b>'", "mime": "text/html"},
        {"code": "echo '<svg xmlns=\"http://www.w3.org/2000/svg\"/>' | display_svg", "mime": "image/svg+xml"},
        {"code": f"echo {PNG_B64} | base64 -d | display_png", "mime": "image/png"},
    ]
    code_inspect_sample = "cd"

    # ----- lang_support's shared promises ------------------------------------------------------
    code_read_stdin = "read -r line; echo \"$line\""
    code_display_between_prints = "echo before; display_html '<i>x</i>'; echo after"
    code_display_svg_and_png = ("echo '<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>' > /tmp/c.svg\n"
                                f"echo {PNG_B64} | base64 -d > /tmp/p.png\n"
                                "display_svg /tmp/c.svg\ndisplay_png /tmp/p.png")
    code_runaway_output = "for i in {1..50000}; do printf '%099d\\n' 0; done"
    code_after = "echo after"  # a shell has no values: the cell prints it
    result_after = None
    code_print_then_busy = "echo first; sleep 2"

    # ----- beyond conformance ---------------------------------------------------------------

    def test_state_across_cells(self) -> None:
        reply, _ = self.cell("counter=40\nbump() { counter=$((counter + 1)); }\nmkdir -p /tmp/statedir\n"
                             "cd /tmp/statedir\nexport GREETING=hi\nshopt -s nullglob")
        assert reply["content"]["status"] == "ok", reply
        reply, out = self.cell("bump; bump; echo \"$counter $PWD\"; sh -c 'echo $GREETING'; echo none*")
        assert reply["content"]["status"] == "ok", reply
        assert self.text_of(out) == "42 /tmp/statedir\nhi\n\n", out

    def test_last_status_is_the_result(self) -> None:
        reply, out = self.cell("false; echo still runs; ls /nonexistent")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "ExitStatus" and c["evalue"] == "2", c
        assert self.text_of(out) == "still runs\n" and "/nonexistent" in self.text_of(out, "stderr"), out
        reply, _ = self.cell("false || true")
        assert reply["content"]["status"] == "ok", reply

    def test_exit_starts_a_new_shell(self) -> None:
        self.cell("lost=yes")
        reply, _ = self.cell("exit 3")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "ShellExited" and "status 3" in c["evalue"], c
        reply, out = self.cell("echo \"[${lost-}]\"")
        assert reply["content"]["status"] == "ok" and self.text_of(out) == "[]\n", out

    def test_completion_of_user_values(self) -> None:
        self.cell("myvar_alpha=1 myvar_alps=2\nmy_helper_fn() { :; }\nmkdir -p /tmp/cdir/sub && touch /tmp/cdir/file1")
        c = self.completions("echo ${myvar_al")["content"]
        assert set(c["matches"]) == {"${myvar_alpha", "${myvar_alps"} and c["cursor_start"] == 5, c
        c = self.completions("true && my_helper_")["content"]
        assert c["matches"] == ["my_helper_fn"] and c["cursor_start"] == len("true && "), c
        c = self.completions("cat /tmp/cdir/")["content"]
        assert set(c["matches"]) == {"/tmp/cdir/sub/", "/tmp/cdir/file1"}, c

    def test_interrupt_stops_the_whole_cell_and_keeps_state(self) -> None:
        self.cell("kept='still here'")
        self.interrupt_running("while :; do :; done")
        reply = self.interrupt_running("inner() { sleep 30; echo after-inner; }\n"
                                       "outer() { inner; echo after-outer; }\nouter; echo after-cell")
        out = self.iopub_until_idle(reply["parent_header"]["msg_id"])
        assert "after" not in self.text_of(out), out
        self.interrupt_running("while :; do echo x; done | cat > /dev/null; echo after")
        reply, out = self.cell("echo \"$kept\"")
        assert reply["content"]["status"] == "ok" and self.text_of(out) == "still here\n", out

    def test_input_request(self) -> None:
        reply, out = self.run_with_answers(
            "read -r -p 'name? ' name\nread -rs -p 'pin? ' pin\nread -r age\n"
            "echo \"hi $name $((age + 1)) ${#pin}\"", ["Ada", "1234", "36"])
        assert reply["content"]["status"] == "ok", reply["content"]
        asked = [(r["prompt"], r["password"]) for r in self.input_requests]
        assert asked == [("name? ", False), ("pin? ", True), ("", False)], asked
        assert self.text_of(out) == "hi Ada 37 4\n", out

    def test_other_programs_reading_stdin_are_asked_too(self) -> None:
        reply, out = self.run_with_answers("head -n 1 | tr a-z A-Z", ["shout"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert self.text_of(out) == "SHOUT\n", out

    def test_input_without_stdin_is_an_error(self) -> None:
        """Overridden: a shell without stdin reads end of file (status 1), as `bash < /dev/null`
        would; scripts test read's status, so an exception would be the surprise."""
        self.flush_channels()
        msg_id = self.kc.execute("read -r x; echo \"status $?\"", allow_stdin=False)
        reply = self.kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok", reply["content"]
        out = self.iopub_until_idle(msg_id)
        assert self.text_of(out) == "status 1\n", out
        assert "end of file" in self.text_of(out, "stderr"), out
