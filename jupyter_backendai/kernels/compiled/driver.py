# SPDX-License-Identifier: LGPL-3.0-or-later
"""The driver of a compile-and-run language: the wrapper's verbs over framed JSON.

Started by drivers/compiled_driver.py with BACKENDAI_COMPILED_LANG naming the language
(languages.py). ``execute`` plans the cell (session.py), builds it (builder.py) and runs it
(runner.py); declarations are kept only once their cell compiled.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from ..protocol import FrameReader, encode
from .builder import Builder
from .languages import LANGUAGES, identifiers_in
from . import go as _go, rust as _rust  # noqa: F401,E402  (they add themselves to LANGUAGES)
from .runner import Runner
from .session import CURRENT, MagicError, Session, cell_name, header_declaration, name_at


class Driver:
    def __init__(self, lang_name: str) -> None:
        self.lang = LANGUAGES[lang_name]
        self.session = Session(self.lang.syntax, self.lang.flag_magics)
        self.builder = Builder(self.lang)
        self.cmd_fd = int(os.environ["BACKENDAI_DRIVER_CMD_FD"])
        self.evt_fd = int(os.environ["BACKENDAI_DRIVER_EVENT_FD"])
        self.frames = FrameReader()
        self.pending: list[dict[str, Any]] = []
        self._interrupted = False
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGINT, self._on_sigint)
        self.runner = Runner(self.send, self.cmd_fd, self._read_available, wake_r, lambda: self._interrupted)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self._interrupted = True

    # ----- the channel ----------------------------------------------------------------------

    def send(self, msg: dict[str, Any]) -> None:
        data = encode(msg)
        while data:
            data = data[os.write(self.evt_fd, data):]

    def _read_available(self) -> list[dict[str, Any]]:
        """Frames readable now (the fd is readable when this is called)."""
        try:
            chunk = os.read(self.cmd_fd, 65536)
        except (BlockingIOError, InterruptedError):
            return []
        if not chunk:
            raise SystemExit(0)  # the wrapper closed the channel
        return self.frames.feed(chunk)

    def _next(self) -> dict[str, Any] | None:
        while not self.pending:
            try:
                chunk = os.read(self.cmd_fd, 65536)
            except InterruptedError:
                continue
            if not chunk:
                return None
            self.pending += self.frames.feed(chunk)
        return self.pending.pop(0)

    def loop(self) -> int:
        self.send({"type": "ready", "version": self.builder.version()})
        while True:
            msg = self._next()
            if msg is None:
                return 0
            op = msg.get("op")
            if op == "execute":
                self._interrupted = False
                try:
                    reply = self.execute(str(msg.get("code", "")))
                except Exception as e:  # a bug here must not take the kernel down
                    reply = error("DriverError", f"{type(e).__name__}: {e}")
                self.send(reply)
            elif op == "complete":
                self.send(self.complete(str(msg.get("code", "")), int(msg.get("cursor_pos", 0))))
            elif op == "is_complete":
                status, indent = self.lang.is_complete(str(msg.get("code", "")))
                self.send({"type": "is_complete", "status": status, "indent": indent})
            elif op == "inspect":
                self.send(self.inspect(str(msg.get("code", "")), int(msg.get("cursor_pos", 0))))
            # an input_reply here answers a request of a program that has ended: dropped

    # ----- verbs ----------------------------------------------------------------------------

    def execute(self, code: str) -> dict[str, Any]:
        try:
            plan = self.session.plan(code)
        except MagicError as e:
            return error("MagicError", str(e))
        if plan.kind == "empty":
            return {"type": "ok"}
        flags = plan.flags
        syntax_only = plan.kind == "declare"
        result = self.builder.build(plan.source, flags.cflags, flags.ldflags, syntax_only=syntax_only)
        here = cell_name(plan.cell)
        diagnostics = self.lang.diagnostics(result.diagnostics, plan.source).replace(CURRENT, here)
        if flags.verbose:
            if result.cached:
                what = "cached check" if syntax_only else "cached build"
            else:
                what = "checked" if syntax_only else "compiled"
            note = f"[build] {what} {result.key[:12]}"
            if result.argv:
                note += ": " + " ".join(result.argv)
            os.write(2, (note + "\n").encode())
        if self._interrupted:
            return interrupted()
        if not result.ok:
            lines = diagnostics.rstrip("\n").splitlines()
            return error("CompileError", self.lang.first_error(diagnostics), lines)
        if diagnostics.strip():
            os.write(2, diagnostics.encode())
        if plan.kind != "program":
            self.session.commit(plan)
        if syntax_only:
            return {"type": "ok"}
        assert result.exe is not None
        run = self.runner.run([str(result.exe), *flags.args], cwd=os.getcwd())
        if run.stdin_error:
            return error(*run.stdin_error)
        if run.interrupted:
            return interrupted()
        rc = run.returncode
        if rc is None or rc == 0:
            return {"type": "ok", "data": run.result} if run.result else {"type": "ok"}
        if rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = f"signal {-rc}"
            text = f"the program was killed by {name}"
            if -rc == signal.SIGSEGV:
                text += " (segmentation fault)"
            return error("Signal", text)
        return error("ExitStatus", f"the program exited with status {rc}")

    def complete(self, code: str, cursor: int) -> dict[str, Any]:
        start, matches = self.lang.complete(code, cursor, self.session,
                                            lambda src: identifiers_in(self.builder.preprocessed(src)))
        return {"type": "complete", "matches": matches, "cursor_start": start, "cursor_end": cursor}


    def inspect(self, code: str, cursor: int) -> dict[str, Any]:
        """A kept declaration of the name (with its cell), else its prototype in the headers."""
        name = name_at(code, cursor)
        if not name:
            return {"type": "inspect", "found": False, "data": {}}
        parts = [f"{cell_name(d.cell)}:\n{d.text.strip()}" for d in self.session.declarations_of(name)]
        if not parts:
            directives = "".join(d.text + "\n" for d in self.session.decls
                                 if any(k.startswith(("include:", "define:")) for k in d.keys))
            directives += "".join(ln + "\n" for ln in code.splitlines() if ln.lstrip().startswith("#include"))
            try:
                found = header_declaration(self.builder.preprocessed(directives), name)
            except Exception:
                found = ""
            if found:
                parts.append(found)
        if not parts:
            return {"type": "inspect", "found": False, "data": {}}
        return {"type": "inspect", "found": True, "data": {"text/plain": "\n\n".join(parts)}}


def error(ename: str, evalue: str, traceback: list[str] | None = None) -> dict[str, Any]:
    return {"type": "error", "ename": ename, "evalue": evalue, "traceback": traceback or [f"{ename}: {evalue}"]}


def interrupted() -> dict[str, Any]:
    text = "the cell was interrupted (declarations are kept)"
    return error("Interrupted", text, [f"Interrupted: {text}"])


def main() -> int:
    lang = os.environ.get("BACKENDAI_COMPILED_LANG") or (sys.argv[1] if len(sys.argv) > 1 else "c")
    return Driver(lang).loop()


if __name__ == "__main__":
    sys.exit(main())
