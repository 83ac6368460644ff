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

Each connection's ZMQ sockets also get an identity of their own (the session id and a random
suffix) instead of the bare session id. With one identity per session, a connection replaced
after it opened keeps it until its client acknowledges the close, and the kernel's ROUTER
(router_handover) hands the identity to whichever socket reconnected last: the two connections'
DEALERs take it from each other, and the surviving one misses its replies.
"""

from __future__ import annotations

import uuid
from typing import Any

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

from .handlers import NoDelayKernelWebsocketHandler


class OwnIdentityConnection(ZMQChannelsWebsocketConnection):  # type: ignore[misc]
    def create_stream(self) -> None:
        # shell and stdin share it: the kernel sends input_request to the shell request's sender
        identity = f"{self.session.session}/{uuid.uuid4().hex[:12]}".encode()
        for channel in ("iopub", "shell", "control", "stdin"):
            stream = getattr(self.kernel_manager, "connect_" + channel)(identity=identity)
            stream.channel = channel
            self.channels[channel] = stream


class OneSessionKernelWebsocketHandler(NoDelayKernelWebsocketHandler):
    _replaced = False

    @property
    def kernel_websocket_connection_class(self) -> Any:
        return OwnIdentityConnection

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
