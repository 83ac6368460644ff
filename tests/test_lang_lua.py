"""`backendai-lua`: the wrapper kernel driving Lua 5.4, through the provisioner.

jupyter_kernel_test's conformance checks plus what the wrapper promises beyond them: state
across cells (top-level locals included), interrupts that keep the state (also inside a
coroutine), io.read()/input(), display_data, and the per-cell output cap.
"""

from __future__ import annotations

from typing import Iterator

import pytest

import lang_support
from conftest import Cluster, assert_no_leaks
from lang_support import PNG_B64

pytestmark = pytest.mark.docker

# the same PNG as a Lua string literal of its raw bytes
PNG_LUA = "".join(f"\\{b}" for b in __import__("base64").b64decode(PNG_B64))


@pytest.fixture(scope="module", autouse=True)
def _on_cluster(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    assert_no_leaks(cluster)


class BackendAILuaKernelTests(lang_support.LanguageKernelTests):
    kernel_name = "backendai-lua"
    language_name = "lua"
    file_extension = ".lua"

    code_hello_world = "print('hello, world')"
    code_stderr = "io.stderr:write('test\\n')"

    completion_samples = [
        {"text": "string.fo", "matches": {"format"}},
        {"text": "tabl", "matches": {"table"}},
        {"text": "math.fl", "matches": {"floor"}},
    ]
    complete_code_samples = ["1", "print('hello, world')", "function f(x)\n  return x * 2\nend", "local t = {}"]
    incomplete_code_samples = ["function f(x)", "for i = 1, 3 do", "x = [[abc", "print(1,", "if x then"]
    invalid_code_samples = ["1 +* 2", "local 1x = 2", "f(1 2)", "end"]

    code_generate_error = "error('boom')"
    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": "'a' .. 'b'", "result": '"ab"'},
        {"code": "{1, 2, 3}", "result": "{1, 2, 3}"},
        {"code": "1, 'two'", "result": '1\t"two"'},
    ]
    code_display_data = [
        {"code": "display.html('<b>test</b>')", "mime": "text/html"},
        {"code": "display('image/svg+xml', '<svg xmlns=\"http://www.w3.org/2000/svg\"/>')", "mime": "image/svg+xml"},
        {"code": f"display.png('{PNG_LUA}')", "mime": "image/png"},
    ]
    code_inspect_sample = "string.format"

    code_read_stdin = "input('x')"
    code_display_between_prints = "print('before'); display.html('<i>x</i>'); print('after')"
    code_display_svg_and_png = ("display.svg('<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>')\n"
                                f"display.png('{PNG_LUA}')")
    code_runaway_output = "for i = 1, 50000 do print(('x'):rep(99)) end"
    code_after, result_after = "'after'", '"after"'
    code_print_then_busy = "print('first')\nlocal t = os.time() + 2\nwhile os.time() < t do end"

    # ----- beyond conformance ---------------------------------------------------------------

    def test_state_across_cells(self) -> None:
        reply, _ = self.cell("local counter = 40\nlocal step <const> = 1\nlocal function bump() counter = counter + step"
                             " return counter end\nlabel = 'n'\nlocal unset\nPoint = {}\n"
                             "function Point.new(x) return setmetatable({x = x}, {__index = Point}) end")
        assert reply["content"]["status"] == "ok", reply
        reply, out = self.cell("bump(); return bump()")
        assert reply["content"]["status"] == "ok", reply
        assert self.result_of(out) == "42"
        reply, out = self.cell("label .. counter .. Point.new(step).x, unset")
        assert self.result_of(out) == '"n421"\tnil', out
        # locals inside blocks stay local
        reply, out = self.cell("do local hidden = 1 end\nfor i = 1, 2 do local in_loop = i end\nreturn hidden, in_loop")
        assert self.result_of(out) == "nil\tnil", out

    def test_error_has_name_value_and_traceback(self) -> None:
        reply, out = self.cell("local function inner() return nil + 1 end\ninner()")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "LuaError", c
        assert "arithmetic on a nil value" in c["evalue"] and c["evalue"].startswith("<cell "), c
        assert any(":2: in main chunk" in line for line in c["traceback"]), c
        assert not any("lua_driver" in line for line in c["traceback"]), c
        reply, out = self.cell("x = 1\ny = = 2")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "SyntaxError" and ":2:" in c["evalue"], c
        # The driver keeps working after a user error.
        _, out = self.cell("1+1")
        assert self.result_of(out) == "2"

    def test_completion_of_user_values(self) -> None:
        self.cell("record = {alpha = 1, alps = 2, beta = 3}\ngreeting = 'hi'")
        reply = self.completions("record.al")
        assert set(reply["content"]["matches"]) == {"alpha", "alps"}, reply["content"]
        reply = self.completions("greeting:up")
        assert reply["content"]["matches"] == ["upper"], reply["content"]
        reply = self.completions("recor")
        assert "record" in reply["content"]["matches"], reply["content"]

    def test_interrupt_keeps_state(self) -> None:
        self.cell("local kept = 'still here'")
        self.interrupt_running("while true do end")
        _, out = self.cell("kept")
        assert self.result_of(out) == '"still here"', out
        # a busy coroutine, and a second interrupt in the same process
        self.interrupt_running("local co = coroutine.wrap(function() while true do end end)\nco()")
        _, out = self.cell("kept")
        assert self.result_of(out) == '"still here"', out

    def test_input_request(self) -> None:
        reply, out = self.run_with_answers("local answer = input('name? ')\nio.write('age? ')\nlocal age = io.read('n')\n"
                                           "print('hi ' .. answer .. ' ' .. age + 1)", ["Ada", "36"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert [r["prompt"] for r in self.input_requests] == ["name? ", ""], self.input_requests
        assert "hi Ada 37" in self.text_of(out), out

    def test_stdin_loop_ends_at_an_empty_answer(self) -> None:
        reply, out = self.run_with_answers("local got = {}\nfor line in io.lines() do got[#got + 1] = line end\n"
                                           "return got, io.read('a')", ["a", "b", "", "c", "d", ""])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert self.result_of(out) == '{"a", "b"}\t"c\\nd\\n"', out
