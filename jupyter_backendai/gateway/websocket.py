# SPDX-License-Identifier: LGPL-3.0-or-later
"""The kernel websocket of the gateway: TCP_NODELAY (see handlers) and one connection per session.

A newer connection of the same client session can arrive while the previous one is still
being prepared (waiting for kernel info). jupyter_server then "replaces the stale connection"
by closing the old handler, which does nothing before it is open: the old one would go on to
open ZMQ sockets under the same identity (the session id) as its successor, and the kernel's
ROUTER could send the successor's shell replies to it, so the client never hears its
kernel_info_reply and waits forever. `jupyter lab --gateway-url` leaves exactly such a
connection behind when the browser reconnects at once, as it does for a new notebook (it
cancels its connect future but not the connection). Such a connection closes instead.
"""

from __future__ import annotations

from .handlers import NoDelayKernelWebsocketHandler


class OneSessionKernelWebsocketHandler(NoDelayKernelWebsocketHandler):
    _replaced = False

    async def open(self, kernel_id: str) -> None:  # type: ignore[override]
        conn = self.connection
        key = getattr(conn, "session_key", "")
        newer = conn._open_sessions.get(key) if key else None
        if newer is not None and newer is not self:
            self.log.warning("Closing connection %s: replaced before it opened", key)
            self._replaced = True
            self.set_nodelay(True)
            self.close(1000, "replaced by a newer connection of the same session")
            return
        await super().open(kernel_id)

    def on_close(self) -> None:
        if self._replaced:  # never connected: nothing to disconnect or count
            self.connection = None
            return
        super().on_close()
