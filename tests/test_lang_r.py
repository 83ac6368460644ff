# SPDX-License-Identifier: LGPL-3.0-or-later
"""`backendai-r`: the wrapper kernel driving R, through the provisioner.

jupyter_kernel_test's conformance checks plus what the wrapper promises beyond them: state
across cells, R errors with their call chain, interrupts that keep the state (also inside
system()), readline() as input requests, display_data (helpers and base graphics as SVG), and
the per-cell output cap.
"""

from __future__ import annotations

import time
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


class BackendAIRKernelTests(lang_support.LanguageKernelTests):
    kernel_name = "backendai-r"
    language_name = "R"
    file_extension = ".r"

    code_hello_world = "cat('hello, world\\n')"
    code_stderr = "message('test')"

    completion_samples = [
        {"text": "rnor", "matches": {"rnorm"}},
        {"text": "Sys.getp", "matches": {"Sys.getpid"}},
        {"text": "suppressWarn", "matches": {"suppressWarnings"}},
    ]
    complete_code_samples = ["1", "cat('hello, world')", "f <- function(x) {\n  x * 2\n}", "x <- c(1, 2)"]
    incomplete_code_samples = ["f <- function(x) {", "for (i in 1:3) {", "s <- 'abc", "print(1,", "x <- 1 +"]
    invalid_code_samples = ["1 +* 2", "1x <- 2", "f(1 2)", "}"]

    code_generate_error = "stop('boom')"
    code_execute_result = [
        {"code": "6*7", "result": "[1] 42"},
        {"code": "paste0('a', 'b')", "result": '[1] "ab"'},
        {"code": "c(1L, 2L, 3L)", "result": "[1] 1 2 3"},
        {"code": "x <- 1; x + 1", "result": "[1] 2"},
        {"code": "Sys.info()[['effective_user']]", "result": '[1] "work"'},
    ]
    code_display_data = [
        {"code": "display_html('<b>test</b>')", "mime": "text/html"},
        {"code": "display_svg('<svg xmlns=\"http://www.w3.org/2000/svg\"/>')", "mime": "image/svg+xml"},
        {"code": f"display_png(jsonlite::base64_dec('{PNG_B64}'))", "mime": "image/png"},
    ]
    code_inspect_sample = "paste"

    code_read_stdin = "readline('x')"
    code_display_between_prints = "cat('before\\n'); display_html('<i>x</i>'); cat('after\\n')"
    code_display_svg_and_png = (
        "f <- tempfile(fileext = '.svg')\n"
        "writeLines('<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>', f)\n"
        "display_svg(f)\n"
        f"p <- tempfile(fileext = '.png'); writeBin(jsonlite::base64_dec('{PNG_B64}'), p)\n"
        "display_png(p)")
    code_runaway_output = "for (i in 1:50000) cat(strrep('x', 99), '\\n', sep = '')"
    code_after, result_after = "'after'", '[1] "after"'
    code_print_then_busy = "cat('first\\n')\nSys.sleep(1.5)"

    # ----- beyond conformance ---------------------------------------------------------------

    def test_state_across_cells(self) -> None:
        reply, out = self.cell("counter <- 40\nbump <- function() { counter <<- counter + 1; counter }\n"
                               "df <- data.frame(a = 1:3, b = c('x', 'y', 'z'))\nsetwd(tempdir())")
        assert reply["content"]["status"] == "ok", reply
        assert self.result_of(out) is None, out  # setwd() is invisible
        reply, out = self.cell("bump()\nbump()")
        assert reply["content"]["status"] == "ok", reply
        assert self.text_of(out) == "[1] 41\n", out  # visible values before the last print
        assert self.result_of(out) == "[1] 42"
        _, out = self.cell("nrow(df) + counter; identical(getwd(), normalizePath(tempdir()))")
        assert self.result_of(out) == "[1] TRUE", out

    def test_error_has_name_value_and_traceback(self) -> None:
        reply, _ = self.cell("inner <- function(x) stop('bad ', x)\nouter <- function() inner(7)\nouter()")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "simpleError" and c["evalue"] == "bad 7", c
        assert c["traceback"][0] == "Error in inner(7): bad 7", c
        assert c["traceback"][1] == "Calls: outer() -> inner(7)", c
        reply, _ = self.cell("x <- 1\ny <- = 2")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "SyntaxError" and "unexpected '='" in c["evalue"], c
        # A condition class of its own names the error; the driver goes on.
        reply, _ = self.cell("stop(structure(class = c('myError', 'error', 'condition'), "
                             "list(message = 'mine', call = NULL)))")
        assert reply["content"]["ename"] == "myError" and reply["content"]["evalue"] == "mine", reply["content"]
        _, out = self.cell("1 + 1")
        assert self.result_of(out) == "[1] 2"

    def test_warnings_and_messages_go_to_stderr(self) -> None:
        reply, out = self.cell("f <- function() { warning('careful'); 'done' }\nf()")
        assert reply["content"]["status"] == "ok", reply
        assert "Warning in f() : careful" in self.text_of(out, "stderr"), out
        assert self.result_of(out) == '[1] "done"'

    def test_completion_of_user_values(self) -> None:
        self.cell("record <- list(alpha = 1, alps = 2, beta = 3)\ngreeting_text <- 'hi'")
        reply = self.completions("record$al")
        c = reply["content"]
        assert set(c["matches"]) == {"record$alpha", "record$alps"}, c
        assert c["cursor_start"] == 0 and c["cursor_end"] == len("record$al"), c
        reply = self.completions("x <- greeting_t")
        assert reply["content"]["matches"] == ["greeting_text"], reply["content"]
        assert reply["content"]["cursor_start"] == len("x <- "), reply["content"]

    def test_interrupt_keeps_state(self) -> None:
        self.cell("kept <- 'still here'")
        self.interrupt_running("while (TRUE) {}")
        _, out = self.cell("kept")
        assert self.result_of(out) == '[1] "still here"', out
        # a child process in the foreground, then a sleep inside a function
        self.interrupt_running("system('sleep 30')")
        self.interrupt_running("f <- function() Sys.sleep(30)\nf()")
        _, out = self.cell("kept")
        assert self.result_of(out) == '[1] "still here"', out

    def test_input_request(self) -> None:
        reply, out = self.run_with_answers(
            "name <- readline('name? ')\nage <- as.integer(readline())\ncat('hi', name, age + 1, '\\n')", ["Ada", "36"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert [r["prompt"] for r in self.input_requests] == ["name? ", ""], self.input_requests
        assert "hi Ada 37" in self.text_of(out), out

    def test_reads_of_stdin_ask_too(self) -> None:
        """readLines(stdin()) and scan() ask the frontend line by line; an empty answer ends the input."""
        reply, out = self.run_with_answers(
            "x <- readLines(stdin(), n = 2)\ny <- scan(n = 1)\nz <- scan(what = '', quiet = TRUE)\n"
            "cat(x, y + 1, z, sep = '|')", ["a", "b", "41", "p q", "r", ""])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert self.text_of(out) == "a|b|42|p|q|r", out
        assert "Read 1 item" in self.text_of(out, "stderr"), out  # scan's own report, once per call
        # files and text are read as before
        _, out = self.cell("f <- tempfile(); writeLines(c('p', 'q'), f); c(readLines(f), scan(text = '1 2', quiet = TRUE))")
        assert self.result_of(out) == '[1] "p" "q" "1" "2"', out

    def test_base_graphics_become_svg(self) -> None:
        reply, out = self.cell("cat('plotting\\n')\nplot(1:10, main = 'ten points')\nhist(rnorm(50))")
        assert reply["content"]["status"] == "ok", reply
        shown = [m["content"]["data"] for m in out if m["msg_type"] == "display_data"]
        assert len(shown) == 2, out
        assert all(d["image/svg+xml"].lstrip().startswith("<?xml") and "<svg" in d["image/svg+xml"] for d in shown)
        # no device is left open for the next cell
        _, out = self.cell("length(dev.list())")
        assert self.result_of(out) == "[1] 0", out

    def test_output_streams_while_running(self) -> None:
        """stdout arrives as it is written (R's and a child process's), not at the end of the cell."""
        self.flush_channels()
        msg_id = self.kc.execute("cat('first\\n')\nSys.sleep(1.5)\ninvisible(system('echo second; sleep 1.5'))")
        t0 = time.monotonic()
        seen: dict[str, float] = {}
        while True:
            msg = self.kc.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                for word in ("first", "second"):
                    if word in msg["content"]["text"]:
                        seen.setdefault(word, time.monotonic() - t0)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                done_at = time.monotonic() - t0
                break
        self.kc.get_shell_msg(timeout=10)
        assert set(seen) == {"first", "second"}, seen
        assert done_at - seen["first"] > 2.0 and done_at - seen["second"] > 0.9, (seen, done_at)
