# SPDX-License-Identifier: LGPL-3.0-or-later
"""Put a driver's displays at their place in the program's stdout.

Displays travel as frames on the event fd, stdout on its own pipe, so the wrapper cannot tell
from arrival alone whether ``print("Figure 1"); display(fig); print("done")`` printed "done"
before or after the figure. A driver that cares writes a marker into stdout, in the same
stream as the program's output (so even buffered output keeps its order), then sends the
display frame with the marker's number as ``sync``. Here the text before a marker goes out,
then its display, then the text after it; text after a marker whose frame has not arrived yet
is held until it does. Displays without ``sync`` go out as they arrive.

Pure logic: events in, events out; the wrapper does the sending.
"""

from __future__ import annotations

import re
from typing import Any

#: What a driver writes to stdout before display frame ``n``: an OSC sequence no terminal
#: program prints by accident.
MARKER_PREFIX = "\x1b]5150;bai-display;"
MARKER_RE = re.compile(r"\x1b\]5150;bai-display;(\d+)\x07")
_PARTIAL_RE = re.compile(r"\x1b(?:\]5150;bai-display;\d*)?$")

Event = tuple[str, Any]  # ("text", str) or ("display", frame)


def marker(n: int) -> str:
    return f"{MARKER_PREFIX}{n}\x07"


def _partial_tail(text: str) -> int:
    """Length of a suffix of ``text`` that may be the start of a marker."""
    i = text.rfind("\x1b")
    if i < 0:
        return 0
    tail = text[i:]
    if MARKER_PREFIX.startswith(tail) or _PARTIAL_RE.fullmatch(tail):
        return len(tail)
    return 0


class DisplayOrder:
    """One cell's stdout and displays, merged in the order the program produced them."""

    def __init__(self) -> None:
        self._carry = ""                  # a possible marker cut by a chunk boundary
        self._waiting: int | None = None  # marker seen, its frame not yet here
        self._held: list[str] = []        # stdout after that marker
        self._frames: dict[int, Any] = {}  # frames whose marker is not yet in stdout

    def stdout(self, text: str) -> list[Event]:
        if self._waiting is not None:
            self._held.append(text)
            return []
        out: list[Event] = []
        buf = self._carry + text
        self._carry = ""
        while True:
            m = MARKER_RE.search(buf)
            if m is None:
                break
            if m.start():
                out.append(("text", buf[:m.start()]))
            n, buf = int(m.group(1)), buf[m.end():]
            frame = self._frames.pop(n, None)
            if frame is None:
                self._waiting = n
                if buf:
                    self._held.append(buf)
                return out
            out.append(("display", frame))
        keep = _partial_tail(buf)
        if keep:
            self._carry, buf = buf[-keep:], buf[:-keep]
        if buf:
            out.append(("text", buf))
        return out

    def display(self, frame: dict[str, Any]) -> list[Event]:
        n = frame.get("sync")
        if not isinstance(n, int):
            return [("display", frame)]
        if n != self._waiting:
            self._frames[n] = frame
            return []
        self._waiting = None
        held, self._held = "".join(self._held), []
        return [("display", frame), *self.stdout(held)]

    def flush(self) -> list[Event]:
        """The cell ended: everything still held goes out, in the best order known."""
        out: list[Event] = []
        held = self._carry + "".join(self._held)
        self._carry, self._held, self._waiting = "", [], None
        # Frames whose marker never showed (their stdout was lost or closed) go last.
        frames = [self._frames[k] for k in sorted(self._frames)]
        self._frames = {}
        if held:
            out.append(("text", MARKER_RE.sub("", held)))
        out.extend(("display", f) for f in frames)
        return out
