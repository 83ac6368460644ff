# SPDX-License-Identifier: LGPL-3.0-or-later
"""What each handed-out kernel is doing, as its IOPub stream shows it.

The agent subscribes to every user kernel's IOPub socket, so activity is seen whoever the
client is (a gateway websocket, `jupyter console`, VS Code on raw ZeroMQ): the manager culls
idle kernels from these reports. Messages are checked against the kernel's key: a kernel
cannot fake another's activity, and its own claims only keep itself alive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.session import Session

log = logging.getLogger(__name__)


@dataclass
class Activity:
    """Last message time (monotonic) and execution state of one kernel."""

    last: float = field(default_factory=time.monotonic)
    state: str = "starting"

    def observe(self, msg_type: str, content: dict[str, Any], now: float) -> None:
        self.last = now
        if msg_type == "status":
            self.state = str(content.get("execution_state", self.state))

    def report(self, now: float) -> dict[str, Any]:
        # Seconds since, not a timestamp: the agent's and the manager's clocks may differ.
        return {"idle_seconds": round(max(0.0, now - self.last), 3), "state": self.state}


class ActivityWatcher:
    def __init__(self, ctx: zmq.asyncio.Context):
        self.ctx = ctx
        self.activity: dict[str, Activity] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def watch(self, name: str, connection: dict[str, Any]) -> None:
        if name in self._tasks:
            return
        self.activity[name] = Activity()
        self._tasks[name] = asyncio.create_task(self._follow(name, connection))

    def forget(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task:
            task.cancel()
        self.activity.pop(name, None)

    def report(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        return {name: a.report(now) for name, a in self.activity.items()}

    def close(self) -> None:
        for name in list(self._tasks):
            self.forget(name)

    async def _follow(self, name: str, connection: dict[str, Any]) -> None:
        session = Session(key=str(connection["key"]).encode(),
                          signature_scheme=connection.get("signature_scheme", "hmac-sha256"))
        sock = self.ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(f"{connection.get('transport', 'tcp')}://{connection['ip']}:{connection['iopub_port']}")
        try:
            while True:
                frames = await sock.recv_multipart(copy=True)
                try:
                    _, parts = session.feed_identities(frames, copy=True)
                    msg = session.deserialize(parts, content=True, copy=True)
                except Exception:  # bad signature or garbage: not activity
                    continue
                act = self.activity.get(name)
                if act is not None:
                    act.observe(msg["header"].get("msg_type", ""), msg.get("content") or {}, time.monotonic())
        except asyncio.CancelledError:
            pass
        finally:
            sock.close(0)
