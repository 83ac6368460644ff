# SPDX-License-Identifier: LGPL-3.0-or-later
"""`backendai-bash`: the wrapper kernel driving one long-lived bash, through the provisioner.

jupyter_kernel_test's conformance checks plus what the wrapper promises beyond them: state
across cells (variables, functions, working directory), a non-zero last status as an error,
an exiting shell replaced, interrupts that stop the whole cell and keep the shell, blocked
reads of stdin as input requests (read -p/-s, other programs), display helpers, and the
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


class BackendAIBashKernelTests(jupyter_kernel_test.KernelTests):
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

    # ----- helpers --------------------------------------------------------------------------

    def cell(self, code: str, timeout: float = 30) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        self.flush_channels()
        reply, out = self.execute_helper(code, timeout=timeout)
        return reply, out

    @staticmethod
    def text_of(out: list[dict[str, Any]], name: str = "stdout") -> str:
        return "".join(m["content"]["text"] for m in out if m["msg_type"] == "stream" and m["content"]["name"] == name)

    def interrupt_running(self, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
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
        return reply, self.outputs_of(msg_id)

    def outputs_of(self, msg_id: str) -> list[dict[str, Any]]:
        out = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            out.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return out

    def run_with_answers(self, code: str, answers: list[tuple[str, bool, str]],
                         ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run a cell that reads stdin, checking each (prompt, password) and answering it."""
        self.flush_channels()
        msg_id = self.kc.execute(code, allow_stdin=True)
        for prompt, password, value in answers:
            req = self.kc.get_stdin_msg(timeout=20)
            assert req["msg_type"] == "input_request", req
            assert (req["content"]["prompt"], req["content"]["password"]) == (prompt, password), req["content"]
            self.kc.input(value)
        reply = self.kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id, reply
        return reply, self.outputs_of(msg_id)

    def completions(self, text: str) -> dict[str, Any]:
        self.flush_channels()
        self.kc.complete(text)
        return self.kc.get_shell_msg(timeout=10)["content"]

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
        c = self.completions("echo ${myvar_al")
        assert set(c["matches"]) == {"${myvar_alpha", "${myvar_alps"} and c["cursor_start"] == 5, c
        c = self.completions("true && my_helper_")
        assert c["matches"] == ["my_helper_fn"] and c["cursor_start"] == len("true && "), c
        c = self.completions("cat /tmp/cdir/")
        assert set(c["matches"]) == {"/tmp/cdir/sub/", "/tmp/cdir/file1"}, c

    def test_interrupt_stops_the_whole_cell_and_keeps_state(self) -> None:
        self.cell("kept='still here'")
        self.interrupt_running("while :; do :; done")
        _, out = self.interrupt_running("inner() { sleep 30; echo after-inner; }\n"
                                        "outer() { inner; echo after-outer; }\nouter; echo after-cell")
        assert "after" not in self.text_of(out), out
        self.interrupt_running("while :; do echo x; done | cat > /dev/null; echo after")
        reply, out = self.cell("echo \"$kept\"")
        assert reply["content"]["status"] == "ok" and self.text_of(out) == "still here\n", out

    def test_input_request(self) -> None:
        reply, out = self.run_with_answers(
            "read -r -p 'name? ' name\nread -rs -p 'pin? ' pin\nread -r age\n"
            "echo \"hi $name $((age + 1)) ${#pin}\"", [("name? ", False, "Ada"), ("pin? ", True, "1234"),
                                                     ("", False, "36")])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert self.text_of(out) == "hi Ada 37 4\n", out

    def test_other_programs_reading_stdin_are_asked_too(self) -> None:
        reply, out = self.run_with_answers("head -n 1 | tr a-z A-Z", [("", False, "shout")])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert self.text_of(out) == "SHOUT\n", out

    def test_input_without_stdin_is_end_of_file(self) -> None:
        self.flush_channels()
        msg_id = self.kc.execute("read -r x; echo \"status $?\"", allow_stdin=False)
        reply = self.kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok", reply["content"]
        out = self.outputs_of(msg_id)
        assert self.text_of(out) == "status 1\n", out
        assert "end of file" in self.text_of(out, "stderr"), out

    def test_display_svg_and_png(self) -> None:
        reply, out = self.cell(
            "echo '<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>' > /tmp/c.svg\n"
            f"echo {PNG_B64} | base64 -d > /tmp/p.png\n"
            "display_svg /tmp/c.svg\ndisplay_png /tmp/p.png")
        assert reply["content"]["status"] == "ok", reply
        shown = [m["content"]["data"] for m in out if m["msg_type"] == "display_data"]
        assert len(shown) == 2, out
        assert "<circle" in shown[0]["image/svg+xml"]
        assert shown[1]["image/png"] == PNG_B64

    def test_display_keeps_its_place_in_the_output(self) -> None:
        reply, out = self.cell("echo before; display_html '<i>x</i>'; echo after")
        assert reply["content"]["status"] == "ok", reply
        order = [("display" if m["msg_type"] == "display_data" else m["content"]["text"].strip())
                 for m in out if m["msg_type"] in ("stream", "display_data")]
        assert order == ["before", "display", "after"], order

    def test_runaway_output_is_capped(self) -> None:
        reply, out = self.cell("for i in {1..50000}; do printf '%099d\\n' 0; done", timeout=60)
        assert reply["content"]["status"] == "ok", reply
        shown = self.text_of(out)
        assert 900_000 <= len(shown) <= 1_000_000, len(shown)
        assert "output limit" in self.text_of(out, "stderr"), self.text_of(out, "stderr")[-300:]
        reply, out = self.cell("echo after")  # a fresh budget and nothing left over
        assert self.text_of(out) == "after\n", out

    def test_output_streams_while_running(self) -> None:
        """stdout arrives as it is written, not at the end of the cell."""
        self.flush_channels()
        msg_id = self.kc.execute("echo first; sleep 2")
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
