# SPDX-License-Identifier: LGPL-3.0-or-later
"""Bash driver for the wrapper kernel: one long-lived bash runs every cell.

Bash cannot speak the wrapper's framed JSON itself, so this small Python process does, and
drives a bash that sources bash_loop.bash. Bash writes straight to this process's stdout and
stderr (the wrapper's pipes), so output streams as the programs write it.

- A cell's result: its last command's exit status; non-zero is an error ("ExitStatus").
- Interrupt: the wrapper signals the whole process group; bash's INT trap unwinds the cell
  (see bash_loop.bash) and the shell stays. This process only notes the signal.
- stdin: each cell reads a FIFO held open here. When a process is blocked in read() on it
  (seen in /proc/PID/syscall), the frontend is asked (input_request) and the answer written
  to the FIFO. Without an answer (no stdin in the frontend) the FIFO closes: end of file.
- is_complete: ``bash -n`` on the cell; completion: ``compgen`` in the live shell.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
LOOP = os.path.join(HERE, "bash_loop.bash")
BASH = shutil.which("bash") or "/bin/bash"
CTL_FD, REP_FD = 60, 61  # bash's ends of the request/record pipes (clear of fds users pick)

# read-like syscalls by architecture: a process in one of these on the FIFO waits for input.
READ_SYSCALLS = {
    "x86_64": {0, 17, 19, 295},   # read, pread64, readv, preadv
    "aarch64": {63, 65, 67, 69},  # read, readv, pread64, preadv
}.get(platform.machine(), {0})

# What `bash -n` says about a cell that goes on in the next line.
INCOMPLETE = re.compile(r"unexpected end of file|unexpected EOF while looking for matching|"
                        r"here-document at line \d+ delimited by end-of-file")
# Where a command name may stand: at the start, or after one of these.
COMMAND_POSITION = re.compile(r"(^|[;&|(`{]|\$\(|\b(then|do|else|elif|if|while|until|time|!))\s*$")
TOKEN = re.compile(r"[^\s;&|<>()`'\"=]*$")


class Channel:
    """The wrapper's framed JSON channel."""

    def __init__(self) -> None:
        self.cmd = int(os.environ["BACKENDAI_DRIVER_CMD_FD"])
        self.evt = int(os.environ["BACKENDAI_DRIVER_EVENT_FD"])

    def send(self, msg: dict[str, Any]) -> None:
        body = json.dumps(msg).encode()
        data = struct.pack(">I", len(body)) + body
        while data:
            data = data[os.write(self.evt, data):]

    def _read(self, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = os.read(self.cmd, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def receive(self) -> dict[str, Any] | None:
        head = self._read(4)
        if head is None:
            return None
        body = self._read(struct.unpack(">I", head)[0])
        return None if body is None else json.loads(body)


def stderr(text: str) -> None:
    os.write(2, text.encode())


class Shell:
    """The bash process and its pipes."""

    def __init__(self, fifo: str) -> None:
        self.fifo = fifo
        ctl_r, self.ctl = os.pipe()
        self.rep, rep_w = os.pipe()
        os.dup2(ctl_r, CTL_FD)
        os.dup2(rep_w, REP_FD)
        os.close(ctl_r)
        os.close(rep_w)
        env = {**os.environ, "BACKENDAI_BASH_CTL_FD": str(CTL_FD), "BACKENDAI_BASH_REP_FD": str(REP_FD),
               "BACKENDAI_BASH_STDIN": fifo}
        self.proc = subprocess.Popen([BASH, "--noprofile", "--norc", "-c", '. "$1"', "bash", LOOP],
                                     stdin=subprocess.DEVNULL, pass_fds=(CTL_FD, REP_FD), env=env)
        os.close(CTL_FD)
        os.close(REP_FD)
        self.buf = b""
        ready = self.record(timeout=30)
        if not ready or ready[0] != "ready":
            raise RuntimeError(f"bash did not start: {ready!r}")
        self.version = ready[1][0] if ready[1] else ""

    def request(self, *fields: str) -> bool:
        data = b"".join(f.encode() + b"\0" for f in fields)
        try:
            while data:
                data = data[os.write(self.ctl, data):]
            return True
        except OSError:
            return False

    def _parse(self) -> tuple[str, list[str]] | None:
        parts = self.buf.split(b"\0", 2)
        if len(parts) < 3:
            return None
        count = int(parts[1])
        fields = parts[2].split(b"\0", count)
        if len(fields) <= count:
            return None  # not all here yet
        self.buf = fields[count]
        return parts[0].decode(), [f.decode(errors="replace") for f in fields[:count]]

    def record(self, timeout: float | None = None) -> tuple[str, list[str]] | None:
        """The next record, None on timeout, ("exit", [status]) when bash is gone."""
        while True:
            rec = self._parse()
            if rec is not None:
                return rec
            ready, _, _ = select.select([self.rep], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self.rep, 65536)
            if not chunk:
                return "exit", [str(self.proc.wait())]
            self.buf += chunk

    def close(self) -> None:
        for fd in (self.ctl, self.rep):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.proc.kill()
            self.proc.wait(2)
        except (OSError, subprocess.TimeoutExpired):
            pass


class Driver:
    def __init__(self) -> None:
        self.chan = Channel()
        self.tmp = tempfile.mkdtemp(prefix="bai-bash-")
        self.fifo = os.path.join(self.tmp, "stdin")
        os.mkfifo(self.fifo, 0o600)
        self.fifo_ino = os.stat(self.fifo).st_ino
        self.shell = Shell(self.fifo)

    # ----- execute ----------------------------------------------------------------------

    def execute(self, code: str) -> dict[str, Any]:
        # Held read-write: opening never blocks, and bash's open for reading finds a writer.
        stdin: int | None = os.open(self.fifo, os.O_RDWR)
        prompts: dict[int, tuple[str, bool]] = {}
        try:
            if not self.shell.request("execute", code):
                return self.shell_died()
            while True:
                rec = self.shell.record(timeout=0.05)
                if rec is None:
                    if stdin is not None:
                        pid = self.blocked_reader(stdin)
                        if pid is not None:
                            stdin = self.ask(stdin, *prompts.pop(pid, ("", False)))
                    continue
                kind, fields = rec
                if kind == "done":
                    status, interrupted = int(fields[0]), fields[1] == "1"
                    if interrupted:
                        return {"type": "error", "ename": "Interrupted", "evalue": "interrupted",
                                "traceback": ["Interrupted: the cell was stopped"]}
                    if status:
                        text = f"the cell's last command exited with status {status}"
                        return {"type": "error", "ename": "ExitStatus", "evalue": str(status),
                                "traceback": [text]}
                    return {"type": "ok"}
                if kind == "display":
                    mime, data, sync = fields
                    self.chan.send({"type": "display", "data": {mime: data}, "metadata": {}, "sync": int(sync)})
                elif kind == "prompt":
                    prompts[int(fields[0])] = (fields[1], fields[2] == "1")
                elif kind == "exit":
                    return self.shell_died(int(fields[0]))
        finally:
            if stdin is not None:
                os.close(stdin)

    def blocked_reader(self, stdin: int) -> int | None:
        """The pid of a process blocked reading the cell's stdin while nothing is in it."""
        pending = bytearray(4)
        fcntl.ioctl(stdin, termios.FIONREAD, pending)
        if struct.unpack("i", pending)[0]:
            return None
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/syscall") as f:
                    call = f.read().split()
                if len(call) < 2 or not call[0].isdigit() or int(call[0]) not in READ_SYSCALLS:
                    continue
                if os.stat(f"/proc/{name}/fd/{int(call[1], 16)}").st_ino == self.fifo_ino:
                    return int(name)
            except (OSError, ValueError):
                continue
        return None

    def ask(self, stdin: int, prompt: str, password: bool) -> int | None:
        """One input_request; the answer goes to the FIFO. None: the FIFO was closed (EOF)."""
        self.chan.send({"type": "input", "prompt": prompt, "password": password})
        while True:
            msg = self.chan.receive()
            if msg is None:
                sys.exit(0)
            if msg.get("op") == "input_reply":
                break
        if "value" in msg and not msg.get("ename"):
            data = (str(msg["value"]) + "\n").encode()
            while data:
                data = data[os.write(stdin, data):]
            return stdin
        if msg.get("ename") != "Interrupted":
            stderr(f"bash: stdin: {msg.get('error') or 'no input'}: the program reads end of file\n")
        os.close(stdin)
        return None

    def shell_died(self, status: int | None = None) -> dict[str, Any]:
        if status is None:
            status = self.shell.proc.wait()
        self.shell.close()
        self.shell = Shell(self.fifo)
        text = (f"the shell exited (status {status}: exit, set -e or a signal); a new one was started: "
                "variables, functions and the working directory are reset")
        return {"type": "error", "ename": "ShellExited", "evalue": text, "traceback": [text]}

    # ----- queries ----------------------------------------------------------------------

    def answer(self, kind: str) -> list[str]:
        while True:
            rec = self.shell.record(timeout=10)
            if rec is None or rec[0] == "exit":
                if rec is not None:
                    self.shell.close()
                    self.shell = Shell(self.fifo)
                return []
            if rec[0] == kind:
                return rec[1]

    def complete(self, code: str, cursor: int) -> dict[str, Any]:
        before = code[:cursor]
        token = TOKEN.search(before).group(0)  # type: ignore[union-attr]
        head = before[:len(before) - len(token)]
        prefix, word = "", token
        if token.startswith("${"):
            mode, prefix, word = "var", "${", token[2:]
        elif token.startswith("$"):
            mode, prefix, word = "var", "$", token[1:]
        elif "/" not in token and COMMAND_POSITION.search(head):
            mode = "command"
        else:
            mode = "file"
        matches: list[str] = []
        if self.shell.request("complete", mode, word):
            matches = [prefix + m for m in self.answer("complete")]
        return {"type": "complete", "matches": matches, "cursor_start": cursor - len(token), "cursor_end": cursor}

    def is_complete(self, code: str) -> dict[str, Any]:
        if re.search(r"(^|[^\\])(\\\\)*\\\n?$", code):
            return {"type": "is_complete", "status": "incomplete", "indent": ""}
        p = subprocess.run([BASH, "--noprofile", "--norc", "-O", "extglob", "-n"], input=code.encode(),
                           capture_output=True, timeout=10)
        err = p.stderr.decode(errors="replace")
        if INCOMPLETE.search(err):
            return {"type": "is_complete", "status": "incomplete", "indent": "  "}
        return {"type": "is_complete", "status": "invalid" if p.returncode else "complete"}

    def inspect(self, code: str, cursor: int) -> dict[str, Any]:
        left = re.search(r"[\w.:+-]*$", code[:cursor]).group(0)  # type: ignore[union-attr]
        right = re.match(r"[\w.:+-]*", code[cursor:]).group(0)  # type: ignore[union-attr]
        name = (left + right).lstrip("$")
        text = ""
        if name and self.shell.request("inspect", name):
            got = self.answer("inspect")
            text = got[0] if got else ""
        if not text.strip():
            return {"type": "inspect", "found": False}
        return {"type": "inspect", "found": True, "data": {"text/plain": text}}

    # ----- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        self.chan.send({"type": "ready", "version": self.shell.version})
        while True:
            msg = self.chan.receive()
            if msg is None:
                break
            op = msg.get("op")
            if op == "execute":
                if self.shell.proc.poll() is not None:
                    self.shell_died()
                reply = self.execute(str(msg.get("code", "")))
            elif op == "complete":
                reply = self.complete(str(msg.get("code", "")), int(msg.get("cursor_pos", 0)))
            elif op == "is_complete":
                reply = self.is_complete(str(msg.get("code", "")))
            elif op == "inspect":
                reply = self.inspect(str(msg.get("code", "")), int(msg.get("cursor_pos", 0)))
            else:
                continue  # a late input_reply
            self.chan.send(reply)
        self.shell.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main() -> None:
    # The wrapper signals the whole group: bash handles the interrupt, this process ignores it
    # with a handler (not SIG_IGN, which bash would inherit and could then not trap).
    signal.signal(signal.SIGINT, lambda *_: None)
    Driver().run()


if __name__ == "__main__":
    main()
