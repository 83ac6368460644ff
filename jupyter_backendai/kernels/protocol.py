# SPDX-License-Identifier: LGPL-3.0-or-later
"""Frames between the wrapper and a language driver: a 4-byte big-endian length, then UTF-8 JSON.

Length prefixes (not prompt matching) keep the channel exact whatever the program prints;
the program's own stdout and stderr travel on their own pipes.
"""

from __future__ import annotations

import json
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024


class ProtocolError(RuntimeError):
    """The driver sent something that is not a frame."""


def encode(msg: dict[str, Any]) -> bytes:
    body = json.dumps(msg, separators=(",", ":")).encode()
    return HEADER.pack(len(body)) + body


class FrameReader:
    """Incremental decoder: feed bytes as they come, get whole messages out."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buf += data
        out = []
        while len(self._buf) >= HEADER.size:
            (n,) = HEADER.unpack_from(self._buf)
            if n > MAX_FRAME:
                raise ProtocolError(f"frame of {n} bytes announced")
            if len(self._buf) < HEADER.size + n:
                break
            body = bytes(self._buf[HEADER.size:HEADER.size + n])
            del self._buf[:HEADER.size + n]
            try:
                msg = json.loads(body)
            except ValueError as e:
                raise ProtocolError(f"bad frame: {e}") from None
            if not isinstance(msg, dict):
                raise ProtocolError("frame is not a JSON object")
            out.append(msg)
        return out
