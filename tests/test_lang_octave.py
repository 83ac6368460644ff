# SPDX-License-Identifier: LGPL-3.0-or-later
"""`backendai-octave`: the wrapper kernel driving GNU Octave, through the provisioner.

jupyter_kernel_test's conformance checks plus what the wrapper promises beyond them: state
across cells, interrupts that keep the workspace, input(), display_data (figures as SVG/PNG
through gnuplot), and the per-cell output cap. Octave prints values itself ("ans = 42"), so
there is no execute_result.
"""

from __future__ import annotations

import time
from typing import Iterator

import pytest

import lang_support
from conftest import Cluster, assert_no_leaks
from lang_support import PNG_B64

pytestmark = pytest.mark.docker

PNG_OCT = f"matlab.net.base64decode('{PNG_B64}')"


@pytest.fixture(scope="module", autouse=True)
def _on_cluster(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    assert_no_leaks(cluster)


class BackendAIOctaveKernelTests(lang_support.LanguageKernelTests):
    kernel_name = "backendai-octave"
    language_name = "octave"
    file_extension = ".m"

    code_hello_world = "disp('hello, world')"
    code_stderr = "fprintf(2, 'test\\n')"

    completion_samples = [
        {"text": "flo", "matches": {"floor"}},
        {"text": "fflu", "matches": {"fflush"}},
    ]
    complete_code_samples = ["1", "disp(1)", "for i = 1:3\n  disp(i)\nend", "x(end)"]
    incomplete_code_samples = ["for i = 1:3", "if true", "x = [1 2", "function y = f(x)", "y = 1 + ..."]
    invalid_code_samples = ["end", "x = 1)"]

    code_generate_error = "error('boom')"
    code_display_data = [
        {"code": "display_html('<b>test</b>')", "mime": "text/html"},
        {"code": "display_svg('<svg xmlns=\"http://www.w3.org/2000/svg\"/>')", "mime": "image/svg+xml"},
        {"code": f"display_png({PNG_OCT})", "mime": "image/png"},
    ]
    code_inspect_sample = "floor"

    code_read_stdin = 'input("x")'
    code_display_between_prints = "disp('before'); display_html('<i>x</i>'); disp('after');"
    code_display_svg_and_png = ("display_svg('<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>');\n"
                                f"display_png({PNG_OCT});")
    code_runaway_output = "for i = 1:50000\n  disp(repmat('x', 1, 99));\nend"
    code_after, result_after = "disp('after')", None
    code_print_then_busy = "disp('first'); pause(1.5);"

    # ----- beyond conformance ---------------------------------------------------------------

    def test_state_across_cells(self) -> None:
        reply, _ = self.cell("counter = 40;\nstep = 1;\nfunction r = twice(x)\n  r = 2 * x;\nend")
        assert reply["content"]["status"] == "ok", reply
        reply, out = self.cell("counter = counter + step;\ncounter = counter + step")
        assert reply["content"]["status"] == "ok", reply
        assert self.text_of(out).strip() == "counter = 42", out
        reply, out = self.cell("disp(twice(counter))")
        assert self.text_of(out).strip() == "84", out

    def test_error_has_identifier_message_and_stack(self) -> None:
        reply, _ = self.cell("function inner()\n  error('demo:inner', 'bad %d', 7);\nend\nfunction outer()\n  inner();\nend")
        assert reply["content"]["status"] == "ok", reply
        reply, out = self.cell("outer()")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "demo:inner" and c["evalue"] == "bad 7", c
        assert any("inner" in line for line in c["traceback"][1:]) and any("outer" in line for line in c["traceback"]), c
        assert not any("__bai" in line or "octave_driver" in line for line in c["traceback"]), c["traceback"]
        _, out = self.cell("disp(1+1)")  # the driver keeps working after a user error
        assert self.text_of(out).strip() == "2"

    def test_interrupt_keeps_state(self) -> None:
        self.cell("kept = 'still here';")
        for loop in ("while true\nend", "pause(60)", "x = 0;\nwhile true\n  x = x + 1;\nend"):
            self.interrupt_running(loop, after=1.0)
            _, out = self.cell("disp(kept)")
            assert self.text_of(out) == "still here\n", out

    def test_interrupt_while_idle_leaves_the_next_cell_alone(self) -> None:
        self.cell("idle = 1;")
        for n in range(2):
            self.km.interrupt_kernel()
            time.sleep(0.3)
            reply, out = self.cell(f"printf('%d\\n', idle + {n})", timeout=20)
            assert reply["content"]["status"] == "ok", reply["content"]
            assert self.text_of(out) == f"{1 + n}\n", out

    def test_plot_is_shown_as_svg(self) -> None:
        reply, out = self.cell("plot([1 4 9 16]);\ntitle('squares');")
        assert reply["content"]["status"] == "ok", reply
        shown = [m["content"]["data"] for m in out if m["msg_type"] == "display_data"]
        assert len(shown) == 1 and "<svg" in shown[0]["image/svg+xml"], out
        reply, out = self.cell("h = figure();\nplot(1:3);\ndisplay_figure(h, 'png');\nclose(h);")
        shown = [m["content"]["data"] for m in out if m["msg_type"] == "display_data"]
        assert len(shown) == 1 and shown[0]["image/png"].startswith("iVBORw0KGgo"), out

    def test_input_request(self) -> None:
        reply, out = self.run_with_answers('answer = input("name? ", "s");\nprintf("hi %s\\n", answer);', ["Ada"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert [r["prompt"] for r in self.input_requests] == ["name? "], self.input_requests
        assert "hi Ada" in self.text_of(out), out

    def test_input_evaluates_without_s(self) -> None:
        reply, out = self.run_with_answers('n = input("n? ");\nprintf("%d\\n", n + 1);', ["40 + 1"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert [r["prompt"] for r in self.input_requests] == ["n? "], self.input_requests
        assert "42" in self.text_of(out), out
