# SPDX-License-Identifier: LGPL-3.0-or-later
"""One running language driver: its process group, its pipes and the framed channel.

The driver leads its own process group, so an interrupt reaches it and whatever it started,
and never the wrapper. Its stdout and stderr are pipes read here as they are written.
"""

from __future__ import annotations

import codecs
import os
import selectors
import signal
import subprocess
import time
from typing import Any, Iterator

from .profile import Profile
from .protocol import FrameReader, ProtocolError, encode

READ_SIZE = 65536


class DriverDied(RuntimeError):
    """The driver exited (or its channel broke)."""


class Driver:
    def __init__(self, profile: Profile, cwd: str | None = None) -> None:
        self.profile = profile
        cmd_r, self._cmd_w = os.pipe()
        self._evt_r, evt_w = os.pipe()
        p = profile
        # The driver learns its channel's fd numbers from the environment (pass_fds keeps the
        # parent's numbers; no preexec_fn in a threaded kernel).
        env = {**os.environ, **p.env,
               "BACKENDAI_DRIVER_CMD_FD": str(cmd_r), "BACKENDAI_DRIVER_EVENT_FD": str(evt_w)}
        self.proc = subprocess.Popen(
            p.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(cmd_r, evt_w), start_new_session=True, cwd=cwd, env=env,
        )
        os.close(cmd_r)
        os.close(evt_w)
        assert self.proc.stdout and self.proc.stderr
        self._sel = selectors.DefaultSelector()
        self._decoders = {}
        for name, f in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            os.set_blocking(f.fileno(), False)
            self._sel.register(f.fileno(), selectors.EVENT_READ, name)
            self._decoders[name] = codecs.getincrementaldecoder("utf-8")(errors="replace")
        os.set_blocking(self._evt_r, False)
        self._sel.register(self._evt_r, selectors.EVENT_READ, "event")
        self._frames = FrameReader()
        self._open = 3
        self.dead = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, msg: dict[str, Any]) -> None:
        data = encode(msg)
        try:
            while data:
                n = os.write(self._cmd_w, data)
                data = data[n:]
        except OSError as e:
            raise DriverDied(f"driver channel closed: {e}") from None

    def poll(self, timeout: float | None) -> Iterator[tuple[str, Any]]:
        """Yield ("stdout"|"stderr", text), ("frame", msg) and finally ("exit", returncode)."""
        if self.dead:
            return
        # Pipes before frames: output written before a frame (a display, the cell's end) is
        # already readable when the frame is, so this keeps the program's order.
        ready = sorted(self._sel.select(timeout), key=lambda kv: kv[0].data == "event")
        for key, _ in ready:
            name, fd = key.data, key.fd
            while True:
                try:
                    chunk = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    break
                except OSError:
                    chunk = b""
                if not chunk:
                    self._sel.unregister(fd)
                    self._open -= 1
                    break
                if name == "event":
                    try:
                        for msg in self._frames.feed(chunk):
                            yield "frame", msg
                    except ProtocolError as e:
                        yield "stderr", f"[driver protocol error: {e}]\n"
                else:
                    text = self._decoders[name].decode(chunk)
                    if text:
                        yield name, text
                if len(chunk) < READ_SIZE:
                    break
        if self._open == 0 or (self._evt_r not in {k.fd for k in self._sel.get_map().values()}):
            # The event pipe closed: the driver is gone (or going); drain what it printed.
            self.dead = True
            for name in ("stdout", "stderr"):
                f = getattr(self.proc, name)
                try:
                    os.set_blocking(f.fileno(), True)
                    rest = f.read()
                except (OSError, ValueError):
                    rest = b""
                if rest:
                    yield name, self._decoders[name].decode(rest, final=True)
            try:
                code = self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.kill()
                code = self.proc.wait()
            yield "exit", code

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def close(self, timeout: float = 2.0) -> None:
        """End the driver: close its command pipe (it exits on EOF), then kill its group."""
        try:
            os.close(self._cmd_w)
        except OSError:
            pass
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        self.kill()
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdout, self.proc.stderr):
            try:
                f.close()  # type: ignore[union-attr]
            except OSError:
                pass
        try:
            self._sel.close()
            os.close(self._evt_r)
        except OSError:
            pass
