# SPDX-License-Identifier: LGPL-3.0-or-later
"""What every Backend.AI language kernel promises beyond jupyter_kernel_test's conformance
checks, written once; a language's test class supplies the snippets in its own syntax.

Import the module, not the class (``import lang_support``): pytest collects every unittest
TestCase in a test module's namespace, and this one has no kernel of its own.
"""

from __future__ import annotations

import time
from typing import Any

import jupyter_kernel_test

# 1x1 transparent PNG
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="

Reply = dict[str, Any]
Messages = list[dict[str, Any]]


class LanguageKernelTests(jupyter_kernel_test.KernelTests):
    #: reads a line of stdin (run without stdin: must fail with StdinNotImplementedError)
    code_read_stdin: str
    #: prints "before", displays some HTML, prints "after", each on a line of its own
    code_display_between_prints: str
    #: displays an SVG with a <circle>, then the PNG of PNG_B64 handed over as raw bytes
    code_display_svg_and_png: str
    #: prints 50,000 lines of 99 "x"
    code_runaway_output: str
    #: a cell whose value is the string "after", and that value as the kernel shows it (None:
    #: the cell prints "after" instead, for a language whose values print themselves)
    code_after: str
    result_after: str | None
    #: prints "first", then stays busy for 1.5-2 s
    code_print_then_busy: str
    #: seconds a cell may take (a compiled language builds first)
    timeout: float = 30

    # ----- helpers --------------------------------------------------------------------------

    def cell(self, code: str, timeout: float | None = None) -> tuple[Reply, Messages]:
        self.flush_channels()
        reply, out = self.execute_helper(code, timeout=timeout or self.timeout)
        return reply, out

    @staticmethod
    def text_of(out: Messages, name: str = "stdout") -> str:
        return "".join(m["content"]["text"] for m in out if m["msg_type"] == "stream" and m["content"]["name"] == name)

    @staticmethod
    def result_of(out: Messages) -> str | None:
        res = [m["content"]["data"]["text/plain"] for m in out if m["msg_type"] == "execute_result"]
        return res[0] if res else None

    def completions(self, text: str) -> Reply:
        self.flush_channels()
        self.kc.complete(text)
        return self.kc.get_shell_msg(timeout=10)

    def interrupt_running(self, code: str, started: str | None = None, after: float = 0.5) -> Reply:
        """Start ``code`` and interrupt it once it runs (``after`` seconds, or once it has printed
        ``started``: a build can take longer); it must stop within the 2 s the issue allows."""
        self.flush_channels()
        msg_id = self.kc.execute(code)
        if started is None:
            time.sleep(after)
        else:
            while True:
                msg = self.kc.get_iopub_msg(timeout=self.timeout)
                if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream"
                        and started in msg["content"]["text"]):
                    break
            time.sleep(0.3)
        t0 = time.monotonic()
        self.km.interrupt_kernel()
        reply = self.kc.get_shell_msg(timeout=10)
        elapsed = time.monotonic() - t0
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "Interrupted", reply["content"]
        assert elapsed < 2.0, f"interrupt took {elapsed:.2f} s"
        return reply

    def run_with_answers(self, code: str, answers: list[str]) -> tuple[Reply, Messages]:
        """Run a cell that reads stdin, answering its input requests in turn (their contents
        are left in ``self.input_requests``)."""
        self.flush_channels()
        msg_id = self.kc.execute(code, allow_stdin=True)
        self.input_requests: list[dict[str, Any]] = []
        for value in answers:
            req = self.kc.get_stdin_msg(timeout=self.timeout)
            assert req["msg_type"] == "input_request", req
            self.input_requests.append(req["content"])
            self.kc.input(value)
        reply = self.kc.get_shell_msg(timeout=self.timeout)
        assert reply["parent_header"]["msg_id"] == msg_id, reply
        return reply, self.iopub_until_idle(msg_id)

    def iopub_until_idle(self, msg_id: str) -> Messages:
        out = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            out.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return out

    # ----- the same promise in every language ------------------------------------------------

    def test_input_without_stdin_is_an_error(self) -> None:
        self.flush_channels()
        msg_id = self.kc.execute(self.code_read_stdin, allow_stdin=False)
        reply = self.kc.get_shell_msg(timeout=self.timeout)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error", reply["content"]
        assert reply["content"]["ename"] == "StdinNotImplementedError", reply["content"]

    def test_display_svg_and_png(self) -> None:
        reply, out = self.cell(self.code_display_svg_and_png)
        assert reply["content"]["status"] == "ok", reply
        shown = [m["content"]["data"] for m in out if m["msg_type"] == "display_data"]
        assert len(shown) == 2, out
        assert "<circle" in shown[0]["image/svg+xml"]
        assert shown[1]["image/png"] == PNG_B64

    def test_display_keeps_its_place_in_the_output(self) -> None:
        reply, out = self.cell(self.code_display_between_prints)
        assert reply["content"]["status"] == "ok", reply
        # (a runtime may write a line's newline as a chunk of its own: whitespace-only chunks are skipped)
        order = [("display" if m["msg_type"] == "display_data" else m["content"]["text"].strip())
                 for m in out if m["msg_type"] == "display_data"
                 or (m["msg_type"] == "stream" and m["content"]["text"].strip())]
        assert order == ["before", "display", "after"], order

    def test_runaway_output_is_capped(self) -> None:
        reply, out = self.cell(self.code_runaway_output, timeout=2 * self.timeout)
        assert reply["content"]["status"] == "ok", reply
        shown = self.text_of(out)
        assert 900_000 <= len(shown) <= 1_000_000, len(shown)
        assert "output limit" in self.text_of(out, "stderr"), self.text_of(out, "stderr")[-300:]
        _, out = self.cell(self.code_after)  # the next cell starts with a fresh budget and nothing left over
        if self.result_after is None:
            assert self.text_of(out) == "after\n", out
        else:
            assert self.result_of(out) == self.result_after and not self.text_of(out), out

    def test_output_streams_while_running(self) -> None:
        """stdout arrives as it is written, not at the end of the cell."""
        self.flush_channels()
        msg_id = self.kc.execute(self.code_print_then_busy)
        t0 = time.monotonic()
        first_at = None
        while True:
            msg = self.kc.get_iopub_msg(timeout=self.timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream" and "first" in msg["content"]["text"] and first_at is None:
                first_at = time.monotonic() - t0
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                done_at = time.monotonic() - t0
                break
        self.kc.get_shell_msg(timeout=10)
        assert first_at is not None and done_at - first_at > 0.9, (first_at, done_at)
