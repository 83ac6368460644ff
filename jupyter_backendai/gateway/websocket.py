# SPDX-License-Identifier: LGPL-3.0-or-later
"""The kernel websocket of the gateway: TCP_NODELAY (see handlers), ZMQ identities of its own,
and one connection per client session.

jupyter_server gives every connection of a client session the session id as ZMQ identity. Two
connections of one session then share it (a replaced one keeps its sockets until its client
acknowledges the close, or opens them late when it was replaced while still being prepared),
and the kernel's ROUTER (router_handover) hands the identity to whichever socket connected
last: the survivor misses its replies and waits forever for kernel_info_reply. So each
connection gets an identity of its own (the session id and a random suffix).

A connection replaced before it opened is closed rather than opened: `jupyter lab
--gateway-url` leaves one behind when the browser reconnects at once, as it does for a new
notebook (it cancels its connect future but not the connection), and nobody would read it.
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
