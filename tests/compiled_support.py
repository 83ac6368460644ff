# SPDX-License-Identifier: LGPL-3.0-or-later
"""What the compile-and-run kernels (C, C++; Go and Rust may reuse it) promise beyond the
conformance suite: declarations kept across cells and replaced by a redefinition, statements
run in a generated main, whole programs, compile errors at the cell's line, magics, the build
cache, interrupts that keep the declarations, stdin as input requests, displays, the output
cap and streaming.

A mixin, not a TestCase: each test file combines it with jupyter_kernel_test.KernelTests and
says how its language prints (``say``) and writes a few snippets.
"""

from __future__ import annotations

import base64
import time
from typing import Any

# 1x1 transparent PNG
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
PNG_C = "".join(f"\\x{b:02x}" for b in base64.b64decode(PNG_B64))  # as a C string literal's body
PNG_LEN = len(base64.b64decode(PNG_B64))


class CompiledLanguageTests:
    # set by the test file
    kc: Any
    km: Any
    #: code printing the integer expression EXPR on its own line
    say_template = 'printf("%d\\n", EXPR);'
    #: a function definition `twice` multiplying by FACTOR
    twice_template = "int twice(int x) { return FACTOR * x; }"
    #: a whole program printing "whole" and argc
    whole_program = 'int main(int argc, char **argv) { printf("whole %d\\n", argc); return 0; }'
    #: an endless loop that ignores SIGINT
    stubborn_loop = "#include <signal.h>\nsignal(SIGINT, SIG_IGN);\nfor (;;) {}"
    #: reads a word and a number from stdin, prints "hi WORD NUMBER+1"
    read_code = 'char name[32]; int age;\nprintf("name? ");\nscanf("%31s", name);\nprintf("age? ");\n' \
                'scanf("%d", &age);\nprintf("hi %s %d\\n", name, age + 1);'
    #: prints "got " and the first character code read from stdin (-1 at end of input)
    getchar_code = 'int c = getchar();\nprintf("got %d\\n", c);'
    #: prints "before", shows some HTML, prints "after"
    ordered_display = 'puts("before");\ndisplay_html("<i>x</i>");\nputs("after");'
    #: 50000 lines of 99 'x'
    runaway = 'for (int i = 0; i < 50000; i++) printf("%099d\\n", 0);'
    runaway_char = "0"
    #: prints "first", then sleeps 2 s
    slow = '#include <unistd.h>\nputs("first");\nsleep(2);'

    def say(self, expr: str) -> str:
        return self.say_template.replace("EXPR", expr)

    # ----- helpers --------------------------------------------------------------------------

    def cell(self, code: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        self.flush_channels()  # type: ignore[attr-defined]
        return self.execute_helper(code, timeout=timeout)  # type: ignore[attr-defined]

    def ok(self, code: str, timeout: float = 60) -> list[dict[str, Any]]:
        reply, out = self.cell(code, timeout)
        assert reply["content"]["status"] == "ok", (code, reply["content"], out)
        return out

    @staticmethod
    def text_of(out: list[dict[str, Any]], name: str = "stdout") -> str:
        return "".join(m["content"]["text"] for m in out if m["msg_type"] == "stream" and m["content"]["name"] == name)

    def collect(self, msg_id: str) -> list[dict[str, Any]]:
        out = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=20)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            out.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return out

    def interrupt_running(self, code: str) -> dict[str, Any]:
        self.flush_channels()  # type: ignore[attr-defined]
        msg_id = self.kc.execute(code)
        # wait until the program runs (the compile may take a while on a busy machine)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = self.kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream" \
                    and "looping" in msg["content"]["text"]:
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

    # ----- the tests ------------------------------------------------------------------------

    def test_declarations_kept_and_replaced(self) -> None:
        self.ok(self.twice_template.replace("FACTOR", "2"))
        assert self.text_of(self.ok(self.say("twice(21)"))) == "42\n"
        self.ok(self.twice_template.replace("FACTOR", "3"))  # a redefinition replaces the old one
        assert self.text_of(self.ok(self.say("twice(21)"))) == "63\n"
        # a global declared alone is kept; statement cells run each in a fresh program
        self.ok("int kept_global = 7;")
        assert self.text_of(self.ok(self.say("kept_global + twice(1)"))) == "10\n"
        # a declaration that does not compile is not kept (the old one stays)
        reply, _ = self.cell(self.twice_template.replace("FACTOR", "undeclared_factor"))
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "CompileError"
        assert self.text_of(self.ok(self.say("twice(1)"))) == "3\n"

    def test_whole_program(self) -> None:
        self.ok(self.twice_template.replace("FACTOR", "2"))
        out = self.ok("//% ARGS one two\n" + self.whole_program)
        assert self.text_of(out) == "whole 3\n", out
        # the program's own main did not disturb the kept declarations
        assert self.text_of(self.ok(self.say("twice(5)"))) == "10\n"
        reply, _ = self.cell("return 3;")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "ExitStatus" and "status 3" in c["evalue"], c

    def test_compile_error_points_to_the_cell_line(self) -> None:
        reply, out = self.cell("int fine = 1;\n\n" + self.say("fine + not_declared_anywhere"))
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "CompileError", c
        n = c["execution_count"]
        assert f"<cell {n}>:3:" in c["evalue"] and "not_declared_anywhere" in c["evalue"], c
        assert any(f"<cell {n}>:3:" in line for line in c["traceback"]), c
        assert not any("<main>" in line for line in c["traceback"]), c

    def test_magics(self) -> None:
        cube_root = "volatile double cube = 27.0;\n" + self.say("(int)(cbrt(cube) + 0.5)")
        reply, _ = self.cell("#include <math.h>\n" + cube_root)
        assert reply["content"]["status"] == "error" and "cbrt" in reply["content"]["evalue"], reply["content"]
        out = self.ok("//% LDFLAGS -lm\n#include <math.h>\n" + cube_root)
        assert self.text_of(out) == "3\n"
        out = self.ok("//% ARGS alpha 'b c'\n" + self.say("argc") + "\nputs(argv[2]);")
        assert self.text_of(out) == "3\nb c\n", out
        flag = self.flag_magic
        out = self.ok(f"//% {flag} -DMAGIC_NUMBER=41\n" + self.say("MAGIC_NUMBER + 1"))
        assert self.text_of(out) == "42\n"
        reply, _ = self.cell("//% NOSUCHMAGIC 1\n" + self.say("1"))
        assert reply["content"]["ename"] == "MagicError", reply["content"]

    flag_magic = "CFLAGS"

    def test_build_cache(self) -> None:
        code = "//% VERBOSE\n" + self.say("123456")
        first = self.ok(code)
        second = self.ok(code)
        assert self.text_of(first) == self.text_of(second) == "123456\n"
        assert "[build] compiled " in self.text_of(first, "stderr"), first
        assert "[build] cached build " in self.text_of(second, "stderr"), second
        key1 = self.text_of(first, "stderr").split()[2].rstrip(":")
        key2 = self.text_of(second, "stderr").split()[3]
        assert key1 == key2

    def test_interrupt_keeps_declarations(self) -> None:
        self.ok(self.twice_template.replace("FACTOR", "4"))
        self.interrupt_running('puts("looping");\nfor (;;) {}')
        assert self.text_of(self.ok(self.say("twice(10)"))) == "40\n"
        # a program ignoring SIGINT is killed; the declarations stay
        self.interrupt_running('puts("looping");\n' + self.stubborn_loop)
        assert self.text_of(self.ok(self.say("twice(11)"))) == "44\n"

    def test_input_request(self) -> None:
        self.flush_channels()  # type: ignore[attr-defined]
        msg_id = self.kc.execute(self.read_code, allow_stdin=True)
        for value in ("Ada", "36"):
            req = self.kc.get_stdin_msg(timeout=60)
            assert req["msg_type"] == "input_request", req
            self.kc.input(value)
        reply = self.kc.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok", reply["content"]
        out = self.collect(msg_id)
        assert self.text_of(out) == "name? age? hi Ada 37\n", out

    def test_empty_answer_is_end_of_input(self) -> None:
        self.flush_channels()  # type: ignore[attr-defined]
        msg_id = self.kc.execute(self.getchar_code, allow_stdin=True)
        req = self.kc.get_stdin_msg(timeout=60)
        assert req["msg_type"] == "input_request", req
        self.kc.input("")
        reply = self.kc.get_shell_msg(timeout=30)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert self.text_of(self.collect(msg_id)) == "got -1\n"

    def test_input_without_stdin_gets_end_of_input(self) -> None:
        self.flush_channels()  # type: ignore[attr-defined]
        msg_id = self.kc.execute(self.getchar_code, allow_stdin=False)
        reply = self.kc.get_shell_msg(timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        out = self.collect(msg_id)
        assert self.text_of(out) == "got -1\n", out
        assert "no input" in self.text_of(out, "stderr"), out

    def test_display_svg_and_png(self) -> None:
        out = self.ok('display_svg("<svg xmlns=\\"http://www.w3.org/2000/svg\\"><circle r=\\"4\\"/></svg>");\n'
                      f'display_png("{PNG_C}", {PNG_LEN});\n'
                      f'FILE *f = fopen("dot.png", "wb"); fwrite("{PNG_C}", 1, {PNG_LEN}, f); fclose(f);\n'
                      'display_png_file("dot.png");')
        shown = [m["content"]["data"] for m in out if m["msg_type"] == "display_data"]
        assert len(shown) == 3, out
        assert "<circle" in shown[0]["image/svg+xml"]
        assert shown[1]["image/png"] == PNG_B64 and shown[2]["image/png"] == PNG_B64

    def test_display_keeps_its_place_in_the_output(self) -> None:
        out = self.ok(self.ordered_display)
        order = [("display" if m["msg_type"] == "display_data" else m["content"]["text"].strip())
                 for m in out if m["msg_type"] in ("stream", "display_data")]
        assert order == ["before", "display", "after"], order

    def test_runaway_output_is_capped(self) -> None:
        out = self.ok(self.runaway, timeout=120)
        shown = self.text_of(out)
        assert 900_000 <= len(shown) <= 1_000_000, len(shown)
        assert "output limit" in self.text_of(out, "stderr"), self.text_of(out, "stderr")[-300:]
        out = self.ok(self.say("5"))  # the next cell starts with a fresh budget
        assert self.text_of(out) == "5\n", out

    def test_output_streams_while_running(self) -> None:
        """stdout arrives as it is written (the program sees a terminal), not at the end."""
        self.flush_channels()  # type: ignore[attr-defined]
        msg_id = self.kc.execute(self.slow)
        first_at = None
        while True:
            msg = self.kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream" and "first" in msg["content"]["text"] and first_at is None:
                first_at = time.monotonic()
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                done_at = time.monotonic()
                break
        self.kc.get_shell_msg(timeout=10)
        assert first_at is not None and done_at - first_at > 1.5, (first_at, done_at)

    def test_crash_is_an_error(self) -> None:
        reply, _ = self.cell("int *volatile nowhere = 0;\n*nowhere = 1;")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "Signal" and "SIGSEGV" in c["evalue"], c

    def test_completion_of_declared_names(self) -> None:
        self.ok("int declared_alpha(void) { return 1; }\nint declared_alps = 2;")
        self.flush_channels()  # type: ignore[attr-defined]
        self.kc.complete("declared_al")
        reply = self.kc.get_shell_msg(timeout=20)
        assert set(reply["content"]["matches"]) == {"declared_alpha", "declared_alps"}, reply["content"]
