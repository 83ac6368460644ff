# SPDX-License-Identifier: LGPL-3.0-or-later
"""What the compile-and-run kernels (C, C++; Go and Rust may reuse it) promise beyond the
conformance suite: declarations kept across cells and replaced by a redefinition, statements
run in a generated main, whole programs, compile errors at the cell's line, magics, the build
cache, interrupts that keep the declarations, stdin as input requests, displays, the output
cap and streaming.

A LanguageKernelTests (tests/lang_support.py: the promises every language shares) whose
snippets are C's; a test file subclasses it and overrides what its language writes differently.
Import the module, not the class (pytest collects every TestCase in a test module's namespace).
"""

from __future__ import annotations

import base64
from typing import Any

import lang_support
from lang_support import PNG_B64
PNG_C_LITERAL = "".join(f"\\x{b:02x}" for b in base64.b64decode(PNG_B64))  # a C string literal's body
PNG_SIZE = len(base64.b64decode(PNG_B64))


class CompiledLanguageTests(lang_support.LanguageKernelTests):
    timeout = 60  # a build takes longer than an eval

    # ----- the shared promises' snippets (lang_support) ----------------------------------------
    code_read_stdin = 'char line[80];\nif (fgets(line, sizeof line, stdin)) fputs(line, stdout);'
    code_display_between_prints = 'puts("before");\ndisplay_html("<i>x</i>");\nputs("after");'
    code_display_svg_and_png = ('display_svg("<svg xmlns=\\"http://www.w3.org/2000/svg\\"><circle r=\\"4\\"/></svg>");\n'
                                f'display_png("{PNG_C_LITERAL}", {PNG_SIZE});')
    code_runaway_output = 'for (int i = 0; i < 50000; i++) printf("%099d\\n", 0);'
    code_after = 'puts("after");'  # C has no cell values: the cell prints it
    result_after = None
    code_print_then_busy = '#include <time.h>\nputs("first");\ntime_t until = time(0) + 2;\nwhile (time(0) < until) {}'

    # ----- snippets of the compiled languages' own tests ----------------------------------------
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

    def say(self, expr: str) -> str:
        return self.say_template.replace("EXPR", expr)

    # ----- helpers --------------------------------------------------------------------------

    def ok(self, code: str, timeout: float | None = None) -> list[dict[str, Any]]:
        reply, out = self.cell(code, timeout)
        assert reply["content"]["status"] == "ok", (code, reply["content"], out)
        return out

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
        if not self.links_libm_itself:
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
    #: g++ links libm for libstdc++ anyway: there -lm changes nothing observable
    links_libm_itself = False

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
        # a declaration cell run again with the same state is not checked again
        decl = "//% VERBOSE\n" + self.twice_template.replace("FACTOR", "5")
        assert "[build] checked " in self.text_of(self.ok(decl), "stderr")
        assert "[build] cached check " in self.text_of(self.ok(decl), "stderr")

    def test_interrupt_keeps_declarations(self) -> None:
        self.ok(self.twice_template.replace("FACTOR", "4"))
        self.interrupt_running('puts("looping");\nfor (;;) {}', started="looping")
        assert self.text_of(self.ok(self.say("twice(10)"))) == "40\n"
        # a program ignoring SIGINT is killed; the declarations stay
        self.interrupt_running('puts("looping");\n' + self.stubborn_loop, started="looping")
        assert self.text_of(self.ok(self.say("twice(11)"))) == "44\n"

    def test_input_request(self) -> None:
        reply, out = self.run_with_answers(self.read_code, ["Ada", "36"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert self.text_of(out) == "name? age? hi Ada 37\n", out

    def test_empty_answer_is_end_of_input(self) -> None:
        reply, out = self.run_with_answers(self.getchar_code, [""])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert self.text_of(out) == "got -1\n"

    def test_display_png_file(self) -> None:
        out = self.ok(f'FILE *f = fopen("dot.png", "wb"); fwrite("{PNG_C_LITERAL}", 1, {PNG_SIZE}, f); fclose(f);\n'
                      'display_png_file("dot.png");')
        shown = [m["content"]["data"] for m in out if m["msg_type"] == "display_data"]
        assert shown == [{"image/png": PNG_B64}], out

    def test_crash_is_an_error(self) -> None:
        reply, _ = self.cell("int *volatile nowhere = 0;\n*nowhere = 1;")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "Signal" and "SIGSEGV" in c["evalue"], c

    def test_inspect_shows_a_kept_declaration(self) -> None:
        out = self.ok(self.twice_template.replace("FACTOR", "6"))
        self.flush_channels()
        self.kc.inspect(self.say("twice(1)"), cursor_pos=len(self.say("twice(1)").split("twice")[0]) + 2)
        reply = self.kc.get_shell_msg(timeout=20)
        c = reply["content"]
        assert c["found"] and "6 * x" in c["data"]["text/plain"] and "<cell " in c["data"]["text/plain"], (c, out)

    def test_completion_of_declared_names(self) -> None:
        self.ok("int declared_alpha(void) { return 1; }\nint declared_alps = 2;")
        self.flush_channels()
        self.kc.complete("declared_al")
        reply = self.kc.get_shell_msg(timeout=20)
        assert set(reply["content"]["matches"]) == {"declared_alpha", "declared_alps"}, reply["content"]
