# SPDX-License-Identifier: LGPL-3.0-or-later
"""`backendai-java`: the wrapper kernel driving JShell, through the provisioner.

jupyter_kernel_test's conformance checks plus what the wrapper promises beyond them: state
across cells, interrupts that keep the state, input() and System.in, display_data, and the
per-cell output cap.
"""

from __future__ import annotations

from typing import Iterator

import pytest

import lang_support
from conftest import Cluster, assert_no_leaks
from lang_support import PNG_B64

pytestmark = pytest.mark.docker

PNG_JAVA = f'java.util.Base64.getDecoder().decode("{PNG_B64}")'


@pytest.fixture(scope="module", autouse=True)
def _on_cluster(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    assert_no_leaks(cluster)


class BackendAIJavaKernelTests(lang_support.LanguageKernelTests):
    kernel_name = "backendai-java"
    language_name = "java"
    file_extension = ".jshell"

    code_hello_world = 'System.out.println("hello, world")'
    code_stderr = 'System.err.println("test")'

    completion_samples = [
        {"text": "Math.fl", "matches": {"floor(", "floorDiv(", "floorMod("}},
        {"text": "System.currentT", "matches": {"currentTimeMillis()"}},
        {"text": "java.util.ArrayL", "matches": {"ArrayList"}},
    ]
    complete_code_samples = ["1", 'System.out.println("hello, world");', "int f(int x) {\n    return x * 2;\n}"]
    incomplete_code_samples = ["int f(int x) {", "for (int i = 0; i < 3; i++) {", "class A {"]

    code_generate_error = 'throw new RuntimeException("boom")'
    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": "java.util.List.of(1, 2, 3)", "result": "[1, 2, 3]"},
        {"code": '"a" + "b"', "result": '"ab"'},
        {"code": 'System.getProperty("user.name")', "result": '"work"'},
    ]
    code_display_data = [
        {"code": 'display.html("<b>test</b>")', "mime": "text/html"},
        {"code": 'display.mime("image/svg+xml", "<svg xmlns=\'http://www.w3.org/2000/svg\'/>")', "mime": "image/svg+xml"},
        {"code": f"display.png({PNG_JAVA})", "mime": "image/png"},
    ]

    code_read_stdin = 'input("x")'
    code_display_between_prints = 'System.out.println("before"); display.html("<i>x</i>"); System.out.println("after");'
    code_display_svg_and_png = ('display.svg("<svg xmlns=\'http://www.w3.org/2000/svg\'><circle r=\'4\'/></svg>");\n'
                                f"display.png({PNG_JAVA});")
    code_runaway_output = 'for (int i = 0; i < 50000; i++) System.out.println("x".repeat(99));'
    code_after, result_after = '"after"', '"after"'
    code_print_then_busy = 'System.out.println("first"); Thread.sleep(1500);'

    # ----- beyond conformance ---------------------------------------------------------------

    def test_state_across_cells(self) -> None:
        reply, _ = self.cell("int counter = 40;\nfinal int step = 1;\nint bump() { counter += step; return counter; }\n"
                            "record P(int x) { }\nimport java.util.*;")
        assert reply["content"]["status"] == "ok", reply
        reply, out = self.cell("bump();\nbump()")
        assert reply["content"]["status"] == "ok", reply
        assert self.result_of(out) == "42", out
        reply, out = self.cell('"n" + counter + new P(step).x() + new ArrayList<>(List.of(5)).get(0)')
        assert self.result_of(out) == '"n4215"', out
        reply, out = self.cell("int quiet = 3;")  # a declaration is not an expression: no result
        assert reply["content"]["status"] == "ok" and self.result_of(out) is None, out

    def test_runtime_error_has_class_message_and_stack(self) -> None:
        reply, _ = self.cell("int inner(String s) { return s.length(); }\nint outer() { return inner(null); }")
        assert reply["content"]["status"] == "ok", reply
        reply, out = self.cell("outer()")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "java.lang.NullPointerException", c
        assert "length()" in c["evalue"], c
        frames = [line for line in c["traceback"] if line.strip().startswith("at ")]
        assert any("inner" in f for f in frames) and any("outer" in f for f in frames), c["traceback"]
        _, out = self.cell("1+1")  # the driver keeps working after a user error
        assert self.result_of(out) == "2"

    def test_compile_error_names_the_cell_line(self) -> None:
        reply, out = self.cell('int ok = 1;\nString s = "x";\nint bad = s * 2;')
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "CompilationError", c
        assert any("cell line 3" in line for line in c["traceback"]), c["traceback"]
        _, out = self.cell("ok")  # snippets before the bad one ran
        assert self.result_of(out) == "1", out

    def test_interrupt_keeps_state(self) -> None:
        self.cell('String kept = "still here";')
        for loop in ("while (true) { }", "Thread.sleep(60_000)"):
            self.interrupt_running(loop, after=1.0)
            _, out = self.cell("kept")
            assert self.result_of(out) == '"still here"', out

    def test_input_request(self) -> None:
        reply, out = self.run_with_answers('String answer = input("name? ");\nSystem.out.println("hi " + answer);',
                                           ["Ada"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert [r["prompt"] for r in self.input_requests] == ["name? "], self.input_requests
        assert "hi Ada" in self.text_of(out), out

    def test_system_in_reads_are_input_requests(self) -> None:
        code = ("var sc = new Scanner(System.in);\nint a = sc.nextInt();\nint b = sc.nextInt();\n"
                "System.out.println(a + b);")
        self.cell("import java.util.Scanner;")
        reply, out = self.run_with_answers(code, ["40", "2"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert [r["prompt"] for r in self.input_requests] == ["", ""], self.input_requests
        assert "42" in self.text_of(out), out
