# SPDX-License-Identifier: LGPL-3.0-or-later
"""Running a built program: stdout on a pty, stdin reads as input requests, displays, interrupts.

- stdout and stdin are one pty (line-buffered by libc, so output streams line by line); its
  output is copied to the driver's stdout, which the wrapper streams to the cell. stderr is the
  driver's own stderr, passed through.
- A read of the terminal while no typed input is pending is seen in /proc/PID/syscall (the
  read's fd resolves to the pty) and becomes an input request; the answer is typed into the pty
  with a newline. An empty answer is end of input (as Ctrl-D at a terminal). When the frontend
  cannot answer, the program is stopped and the cell fails with the wrapper's error.
- Displays: the program writes records on a pipe named by BACKENDAI_DISPLAY_FD (see
  include/backendai_display.h); each becomes a display frame with its ``sync`` number.
- The program leads its own process group. SIGINT to the driver's group reaches the driver,
  which passes it on; a program that ignores it is killed 0.75 s later, the driver (and the
  declarations it keeps) stays.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import os
import platform
import selectors
import signal
import struct
import subprocess
import termios
import time
from dataclasses import dataclass
from typing import Any, Callable

KILL_AFTER = 0.75  # seconds between passing an interrupt on and killing the program (the wrapper allows 2)
POLL = 0.05

# read-like syscalls whose first argument is the fd, per architecture
_READS = {"x86_64": {0, 17, 19, 295}, "aarch64": {63, 65, 67, 69}}.get(platform.machine(), {0})

TEXT_MIMES = ("text/", "image/svg+xml", "application/json", "application/javascript")
#: a record of this MIME type carries the cell's value (its payload is text/plain), not a display
RESULT_MIME = "application/x-backendai-result"


@dataclass
class RunResult:
    returncode: int | None
    interrupted: bool
    result: dict[str, Any] | None = None  # execute_result data the program sent (RESULT_MIME)
    stdin_error: tuple[str, str] | None = None  # (ename, text): it read stdin where none can answer


class DisplayReader:
    """Incremental parser of "BAI1 N MIME SIZE\\n" + bytes records."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self.buf += data
        out = []
        while True:
            nl = self.buf.find(b"\n")
            if nl < 0:
                break
            head = self.buf[:nl].decode("ascii", "replace").split(" ")
            if len(head) != 4 or head[0] != "BAI1":
                del self.buf[:nl + 1]  # not ours: skip the line
                continue
            try:
                n, mime, size = int(head[1]), head[2], int(head[3])
            except ValueError:
                del self.buf[:nl + 1]
                continue
            if len(self.buf) < nl + 1 + size:
                break
            body = bytes(self.buf[nl + 1:nl + 1 + size])
            del self.buf[:nl + 1 + size]
            if mime.startswith(TEXT_MIMES) or mime == RESULT_MIME:
                value = body.decode("utf-8", "replace")
            else:
                value = base64.b64encode(body).decode("ascii")
            out.append({"type": "display", "data": {mime: value}, "metadata": {}, "sync": n})
        return out


def _raw_pty() -> tuple[int, int]:
    """A pty that passes output through untouched and takes typed lines without echo."""
    master, slave = os.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[0] &= ~(termios.IXON | termios.ICRNL | termios.INLCR | termios.IGNCR)  # iflag
    attrs[1] &= ~termios.OPOST                                                    # oflag
    attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ISIG | termios.IEXTEN)  # lflag
    attrs[3] |= termios.ICANON
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))
    os.set_blocking(master, False)
    return master, slave


def _pending_input(slave: int) -> int:
    buf = fcntl.ioctl(slave, termios.TIOCINQ, b"\0\0\0\0")
    return struct.unpack("i", buf)[0]


def _tree(pid: int) -> list[int]:
    """The program and its descendants (through /proc/PID/task/TID/children)."""
    out, todo = [], [pid]
    while todo and len(out) < 256:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            pass
    return out


def reading_terminal(pid: int, tty: str) -> str | None:
    """Which blocked read of the pty a thread of the program's tree is in, else None.

    The answer names the thread and its count of voluntary context switches: a thread that
    took its input and blocked again reads anew, one still waiting for the kernel to move
    typed input to it (the pty's input is processed asynchronously) does not.
    """
    for p in _tree(pid):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{p}/task/{tid}/syscall") as f:
                    fields = f.read().split()
            except OSError:
                continue
            if len(fields) < 2 or not fields[0].isdigit() or int(fields[0]) not in _READS:
                continue
            try:
                fd = int(fields[1], 16)
                if os.readlink(f"/proc/{p}/fd/{fd}") != tty:
                    continue
                with open(f"/proc/{p}/task/{tid}/status") as f:
                    switches = next((ln.split()[1] for ln in f if ln.startswith("voluntary_ctxt_switches")), "")
                return f"{tid}:{switches}"
            except (OSError, ValueError):
                continue
    return None


class Runner:
    """Runs programs for one driver. ``channel`` gives the driver's frame I/O."""

    def __init__(self, send: Callable[[dict[str, Any]], None], cmd_fd: int,
                 read_frames: Callable[[], list[dict[str, Any]]], wakeup_fd: int,
                 interrupted: Callable[[], bool]) -> None:
        self.send = send
        self.cmd_fd = cmd_fd
        self.read_frames = read_frames
        self.wakeup_fd = wakeup_fd
        self.interrupted = interrupted

    def run(self, argv: list[str], cwd: str | None = None) -> RunResult:
        master, slave = _raw_pty()
        tty = os.ttyname(slave)
        disp_r, disp_w = os.pipe()
        env = {**os.environ, "BACKENDAI_DISPLAY_FD": str(disp_w), "TERM": "dumb"}
        for k in ("BACKENDAI_DRIVER_CMD_FD", "BACKENDAI_DRIVER_EVENT_FD"):
            env.pop(k, None)
        try:
            proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=2, pass_fds=(disp_w,),
                                    process_group=0, cwd=cwd, env=env)
        except OSError as e:
            for fd in (master, slave, disp_r, disp_w):
                os.close(fd)
            os.write(2, f"cannot run the program: {e}\n".encode())
            return RunResult(127, False)
        os.close(disp_w)
        os.set_blocking(disp_r, False)
        sel = selectors.DefaultSelector()
        sel.register(master, selectors.EVENT_READ, "out")
        sel.register(disp_r, selectors.EVENT_READ, "display")
        sel.register(self.cmd_fd, selectors.EVENT_READ, "cmd")
        sel.register(self.wakeup_fd, selectors.EVENT_READ, "wakeup")
        # Readable once the program has exited: without it the exit is only noticed at the next
        # POLL tick, up to 50 ms added to every cell (fds close before the process is a zombie).
        exit_fd = _pidfd(proc.pid)
        if exit_fd is not None:
            sel.register(exit_fd, selectors.EVENT_READ, "exit")
        displays = DisplayReader()
        self._result: dict[str, Any] | None = None
        self._stdin_error: tuple[str, str] | None = None
        asked = False          # an input request is out, its reply not yet here
        answered: str | None = None  # the blocked read last asked for (see reading_terminal)
        int_at = 0.0
        code = None
        try:
            while True:
                for key, _ in sel.select(POLL):
                    if key.data == "out":
                        self._copy(master)
                    elif key.data == "display":
                        if not self._displays(disp_r, displays):
                            sel.unregister(disp_r)
                    elif key.data == "cmd":
                        for msg in self.read_frames():
                            if msg.get("op") == "input_reply" and asked:
                                asked = False
                                value = msg.get("value")
                                if msg.get("ename"):  # no stdin here: the cell fails as input() would
                                    self._stdin_error = (str(msg["ename"]), str(msg.get("error", "")))
                                    _killpg(proc.pid, signal.SIGKILL)
                                elif value is None or value == "":
                                    os.write(master, b"\x04")  # end of input (VEOF)
                                else:
                                    os.write(master, str(value).encode() + b"\n")
                    elif key.data == "wakeup":
                        try:
                            os.read(self.wakeup_fd, 512)
                        except BlockingIOError:
                            pass
                if self.interrupted() and not int_at:
                    int_at = time.monotonic()
                    _killpg(proc.pid, signal.SIGINT)
                if int_at and time.monotonic() - int_at > KILL_AFTER:
                    _killpg(proc.pid, signal.SIGKILL)
                if _exited(proc.pid):
                    # the leader is a zombie still holding its group: end what it left running
                    _killpg(proc.pid, signal.SIGKILL)
                    code = proc.wait()
                    break
                if not asked:
                    reading = reading_terminal(proc.pid, tty)
                    if reading and reading != answered and _pending_input(slave) == 0:
                        asked, answered = True, reading
                        self.send({"type": "input", "prompt": "", "password": False})
            self._copy(master)
            self._displays(disp_r, displays)
        finally:
            if code is None:  # an error here: do not leave the program behind
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            sel.close()
            for fd in (master, slave, disp_r, exit_fd):
                if fd is not None:
                    os.close(fd)
        return RunResult(code, bool(int_at) or (code is not None and code == -signal.SIGINT), self._result,
                         self._stdin_error)

    @staticmethod
    def _copy(master: int) -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EIO:
                    return
                raise
            if not data:
                return
            view = memoryview(data)
            while view:
                n = os.write(1, view)
                view = view[n:]

    def _displays(self, fd: int, reader: DisplayReader) -> bool:
        """False at end of file."""
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return True
            if not data:
                return False
            for frame in reader.feed(data):
                if RESULT_MIME in frame["data"]:
                    self._result = {"text/plain": frame["data"][RESULT_MIME]}
                else:
                    self.send(frame)


def _pidfd(pid: int) -> int | None:
    """A pidfd for ``pid``, or None where the kernel or a sandbox refuses one (then polling)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _exited(pid: int) -> bool:
    """The program ended (not reaped yet: WNOWAIT keeps its group alive for a last kill)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
