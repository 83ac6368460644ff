# SPDX-License-Identifier: LGPL-3.0-or-later
"""The wrapper kernel: ipykernel's ``Kernel`` with each ``do_*`` mapped onto one driver verb.

Verbs (wrapper -> driver): ``execute``, ``complete``, ``is_complete``, ``inspect``, and
``input_reply`` while a cell waits in ``input()``. Events (driver -> wrapper): ``ready``,
``ok`` (with an optional ``data`` bundle for execute_result), ``error``, ``display``,
``input``, and the replies ``complete``, ``is_complete``, ``inspect``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

from ipykernel.kernelbase import Kernel

from .driver import Driver, DriverDied
from .ordering import DisplayOrder
from .profile import Profile

QUERY_TIMEOUT = 10.0  # seconds for complete / is_complete / inspect answers


class WrapperKernel(Kernel):
    """Subclassed per profile by :func:`kernel_class`; the profile is the only difference."""

    profile: Profile

    implementation = "backendai-wrapper"
    implementation_version = "0.1.0"
    banner = ""
    language_info: dict[str, Any] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.language_info = dict(self.profile.language_info)
        self.driver: Driver | None = None
        self._lock = threading.Lock()
        self._running = False          # a cell is executing in the driver
        self._interrupted_at = 0.0     # monotonic time of the last interrupt of the running cell
        self._state_lost = False       # the driver was killed because an interrupt did not stop it
        self._start_driver()

    # ----- the driver -----------------------------------------------------------------------

    def _start_driver(self) -> None:
        self.driver = Driver(self.profile, cwd=os.getcwd())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for kind, payload in self.driver.poll(0.5):
                if kind == "frame" and payload.get("type") == "ready":
                    if payload.get("version"):
                        self.language_info["version"] = str(payload["version"])
                    return
                if kind in ("stdout", "stderr"):
                    self.log.warning("driver %s: %s", kind, payload.rstrip())
                if kind == "exit":
                    raise RuntimeError(f"{self.profile.name} driver exited with {payload} before it was ready")
        raise RuntimeError(f"{self.profile.name} driver did not start within 30 s")

    def _restart_driver(self) -> None:
        if self.driver is not None:
            self.driver.close(timeout=0)
        self._start_driver()

    # ----- output ---------------------------------------------------------------------------

    def _stream(self, name: str, text: str, cell: dict[str, Any]) -> None:
        if cell["silent"]:
            return
        limit = self.profile.output_limit
        if cell["shown"] >= limit:
            cell["dropped"] += len(text)
            return
        room = limit - cell["shown"]
        if len(text) > room:
            cell["dropped"] += len(text) - room
            text = text[:room]
        cell["shown"] += len(text)
        self.send_response(self.iopub_socket, "stream", {"name": name, "text": text})
        if cell["shown"] >= limit and not cell["noticed"]:
            cell["noticed"] = True
            self.send_response(self.iopub_socket, "stream", {
                "name": "stderr",
                "text": f"\n[output limit of {limit} characters per cell reached: the rest of this cell's "
                        "output is not shown]\n"})

    def _new_cell(self, silent: bool) -> dict[str, Any]:
        return {"silent": silent, "shown": 0, "dropped": 0, "noticed": False, "order": DisplayOrder()}

    def _output(self, kind: str, payload: Any, cell: dict[str, Any]) -> None:
        """Program output and displays, in the order the driver's markers give (ordering.py)."""
        order: DisplayOrder = cell["order"]
        if kind == "stdout":
            events = order.stdout(payload)
        elif kind == "display":
            events = order.display(payload)
        elif kind == "flush":
            events = order.flush()
        else:
            self._stream(kind, payload, cell)
            return
        for what, item in events:
            if what == "text":
                self._stream("stdout", item, cell)
            elif not cell["silent"]:
                self.send_response(self.iopub_socket, "display_data",
                                   {"data": item.get("data", {}), "metadata": item.get("metadata", {}),
                                    "transient": {}})

    def _error(self, ename: str, evalue: str, traceback: list[str], cell: dict[str, Any] | None) -> dict[str, Any]:
        content = {"ename": ename, "evalue": evalue, "traceback": traceback}
        if cell is None or not cell["silent"]:
            self.send_response(self.iopub_socket, "error", content)
        return {"status": "error", "execution_count": self.execution_count, **content}

    # ----- execute --------------------------------------------------------------------------

    async def do_execute(self, code: str, silent: bool, store_history: bool = True,
                         user_expressions: dict | None = None, allow_stdin: bool = False,
                         **_: Any) -> dict[str, Any]:
        cell = self._new_cell(silent)
        if self.driver is None or self.driver.dead:
            self._restart_driver()
        assert self.driver is not None
        # Output that timers printed between cells goes to this one.
        for kind, payload in self.driver.poll(0):
            if kind in ("stdout", "stderr"):
                self._output(kind, payload, cell)
        with self._lock:
            self._running, self._interrupted_at, self._state_lost = True, 0.0, False
        try:
            self.driver.send({"op": "execute", "code": code})
            return self._run(cell, allow_stdin)
        except DriverDied as e:
            return self._after_death(str(e), cell)
        finally:
            with self._lock:
                self._running = False

    def _run(self, cell: dict[str, Any], allow_stdin: bool) -> dict[str, Any]:
        driver = self.driver
        assert driver is not None
        while True:
            for kind, payload in driver.poll(0.05):
                if kind in ("stdout", "stderr"):
                    self._output(kind, payload, cell)
                elif kind == "exit":
                    return self._after_death(f"exit status {payload}", cell)
                elif kind == "frame":
                    reply = self._on_event(payload, cell, allow_stdin)
                    if reply is not None:
                        self._drain(cell)
                        return reply
            self._escalate_interrupt()

    def _drain(self, cell: dict[str, Any]) -> None:
        """Output written before the final frame is already in the pipes: show it first."""
        assert self.driver is not None
        for kind, payload in self.driver.poll(0):
            if kind in ("stdout", "stderr"):
                self._output(kind, payload, cell)
        self._output("flush", None, cell)

    def _on_event(self, msg: dict[str, Any], cell: dict[str, Any], allow_stdin: bool) -> dict[str, Any] | None:
        kind = msg.get("type")
        if kind == "display":
            self._output("display", msg, cell)
            return None
        if kind == "input":
            self._answer_input(msg, allow_stdin)
            return None
        if kind == "ok":
            self._drain(cell)
            if msg.get("data") and not cell["silent"]:
                self.send_response(self.iopub_socket, "execute_result",
                                   {"execution_count": self.execution_count, "data": msg["data"], "metadata": {}})
            return {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}
        if kind == "error":
            self._drain(cell)
            return self._error(str(msg.get("ename", "Error")), str(msg.get("evalue", "")),
                               [str(line) for line in msg.get("traceback", [])], cell)
        self.log.warning("unexpected driver event during execute: %r", msg)
        return None

    def _answer_input(self, msg: dict[str, Any], allow_stdin: bool) -> None:
        assert self.driver is not None
        if not allow_stdin:
            self.driver.send({"op": "input_reply", "ename": "StdinNotImplementedError",
                              "error": "input() was called, but this frontend does not support input requests"})
            return
        self._allow_stdin = True  # ipykernel's raw_input checks it; only IPythonKernel sets it
        try:
            if msg.get("password"):
                value = self.getpass(str(msg.get("prompt", "")))
            else:
                value = self.raw_input(str(msg.get("prompt", "")))
        except EOFError:
            self.driver.send({"op": "input_reply", "ename": "EOFError", "error": "end of input"})
            return
        except KeyboardInterrupt:
            self.driver.send({"op": "input_reply", "ename": "Interrupted", "error": "input() was interrupted"})
            return
        except Exception as e:  # StdinNotImplementedError and friends: an error in the cell
            self.driver.send({"op": "input_reply", "ename": type(e).__name__, "error": str(e)})
            return
        finally:
            self._allow_stdin = False
        self.driver.send({"op": "input_reply", "value": value})

    # ----- interrupts -----------------------------------------------------------------------

    def _send_interrupt_children(self) -> None:
        """interrupt_request (control thread): SIGINT to the driver's group, never to us."""
        with self._lock:
            if self._running and not self._interrupted_at:
                self._interrupted_at = time.monotonic()
        if self.driver is not None:
            self.driver.signal(signal.SIGINT)

    def _escalate_interrupt(self) -> None:
        with self._lock:
            t = self._interrupted_at
        if t and time.monotonic() - t > self.profile.interrupt_grace and self.driver is not None:
            self._state_lost = True
            self.driver.kill()  # the loop then sees the exit and reports it

    def _after_death(self, why: str, cell: dict[str, Any]) -> dict[str, Any]:
        self._output("flush", None, cell)
        lost = self._state_lost
        try:
            self._restart_driver()
        except RuntimeError as e:
            self.driver = None
            return self._error("DriverDied", str(e), [f"DriverDied: {e}"], cell)
        if lost:
            text = (f"the cell did not stop within {self.profile.interrupt_grace:g} s of the interrupt: "
                    f"the {self.profile.name} runtime was restarted and its state is lost")
            return self._error("Interrupted", text, [f"Interrupted: {text}"], cell)
        text = f"the {self.profile.name} runtime died ({why}) and was restarted: its state is lost"
        return self._error("DriverDied", text, [f"DriverDied: {text}"], cell)

    # ----- queries --------------------------------------------------------------------------

    def _query(self, msg: dict[str, Any], answer: str) -> dict[str, Any] | None:
        if self.driver is None or self.driver.dead:
            return None
        try:
            self.driver.send(msg)
        except DriverDied:
            return None
        deadline = time.monotonic() + QUERY_TIMEOUT
        cell = self._new_cell(False)
        try:
            return self._await_answer(answer, cell, deadline)
        finally:
            self._output("flush", None, cell)

    def _await_answer(self, answer: str, cell: dict[str, Any], deadline: float) -> dict[str, Any] | None:
        assert self.driver is not None
        while time.monotonic() < deadline:
            for kind, payload in self.driver.poll(0.05):
                if kind in ("stdout", "stderr"):
                    self._output(kind, payload, cell)
                elif kind == "frame" and payload.get("type") == answer:
                    return payload
                elif kind == "frame":
                    self.log.warning("unexpected driver event during %s: %r", answer, payload)
                elif kind == "exit":
                    return None
        return None

    async def do_complete(self, code: str, cursor_pos: int | None) -> dict[str, Any]:
        cursor_pos = len(code) if cursor_pos is None else cursor_pos
        r = self._query({"op": "complete", "code": code, "cursor_pos": cursor_pos}, "complete") or {}
        return {"status": "ok", "matches": r.get("matches", []), "cursor_start": r.get("cursor_start", cursor_pos),
                "cursor_end": r.get("cursor_end", cursor_pos), "metadata": {}}

    async def do_is_complete(self, code: str) -> dict[str, Any]:
        r = self._query({"op": "is_complete", "code": code}, "is_complete")
        if r is None:
            return {"status": "unknown"}
        out = {"status": r.get("status", "unknown")}
        if out["status"] == "incomplete":
            out["indent"] = r.get("indent", "")
        return out

    async def do_inspect(self, code: str, cursor_pos: int, detail_level: int = 0,
                         omit_sections: Any = ()) -> dict[str, Any]:
        r = self._query({"op": "inspect", "code": code, "cursor_pos": cursor_pos}, "inspect") or {}
        return {"status": "ok", "found": bool(r.get("found")), "data": r.get("data", {}), "metadata": {}}

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        if self.driver is not None:
            self.driver.close()
            self.driver = None
        return {"status": "ok", "restart": restart}


def kernel_class(profile: Profile) -> type[WrapperKernel]:
    """A WrapperKernel subclass for one language (kernel_info reads class attributes)."""
    return type(f"{profile.name.title()}WrapperKernel", (WrapperKernel,), {
        "profile": profile,
        "implementation": profile.implementation,
        "banner": profile.banner or f"{profile.name} (Backend.AI wrapper kernel)",
        "language_info": dict(profile.language_info),
    })
