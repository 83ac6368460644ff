"""A kernel is ready when it answers ``kernel_info_request``: ask, don't sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient


class NotReady(Exception):
    pass


async def wait_ready(connection: dict[str, Any], timeout: float, died: Callable[[], str | None]) -> None:
    """Return once the kernel replies on its shell channel; raise NotReady otherwise.

    The request is re-sent every half second because a published Docker port accepts TCP
    before the kernel listens behind it, and ZeroMQ may lose a message sent in that gap.
    ``died()`` names why the kernel is gone (or None), so a crash fails at once.
    """
    kc = AsyncKernelClient()
    kc.load_connection_info(connection)
    kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
    deadline = time.monotonic() + timeout
    try:
        while True:
            kc.kernel_info()
            resend = time.monotonic() + 0.5
            while (left := resend - time.monotonic()) > 0:
                reason = died()
                if reason:
                    raise NotReady(reason)
                try:
                    msg = await kc.get_shell_msg(timeout=min(left, 0.1))
                except asyncio.TimeoutError:
                    continue
                except Empty:
                    continue
                if msg["msg_type"] == "kernel_info_reply":
                    return
            if time.monotonic() > deadline:
                raise NotReady(f"kernel did not answer kernel_info within {timeout:g} s")
    finally:
        kc.stop_channels()
