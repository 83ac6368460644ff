# SPDX-License-Identifier: LGPL-3.0-or-later
"""Two websockets of one client session reach the gateway at once, as when a browser reconnects
through `jupyter lab --gateway-url` (which cancels its first connect but not the connection):
the one replaced before it opened gives way, and the other gets every reply.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import Cluster, assert_no_leaks, wait_until
from gateway_support import Gateway, new_user

pytestmark = pytest.mark.docker


@pytest.fixture
def gw(cluster: Cluster, tmp_path: Path) -> Iterator[Gateway]:
    g = Gateway(cluster, tmp_path / "gateway").start()
    yield g
    g.stop()


def kernel_info(ws: Any, session: str, tries: int = 3, timeout: float = 4) -> str:
    """'reply', 'closed' if the gateway closed this socket, or 'silent'.

    The request is sent again after a silence, as a client would: when a connection replaced
    the one before it after that one had opened, the kernel's ROUTER can still hold the old
    ZMQ identity for a moment and drop what arrives meanwhile (as with any Jupyter server).
    """
    import websocket

    for _ in range(tries):
        msg_id = uuid.uuid4().hex
        msg = {"channel": "shell", "parent_header": {}, "metadata": {}, "content": {},
               "header": {"msg_id": msg_id, "msg_type": "kernel_info_request", "username": "t",
                          "session": session, "date": "2026-01-01T00:00:00.000000Z", "version": "5.3"}}
        try:
            ws.send(json.dumps(msg))
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                ws.settimeout(left)
                op, data = ws.recv_data()
                if op == websocket.ABNF.OPCODE_CLOSE:
                    return "closed"
                m = json.loads(data)
                if m["channel"] == "shell" and m["parent_header"].get("msg_id") == msg_id:
                    return "reply"
        except websocket.WebSocketTimeoutException:
            continue
        except (websocket.WebSocketConnectionClosedException, ConnectionError, BrokenPipeError):
            return "closed"
    return "silent"


def test_a_connection_replaced_before_it_opened_gives_way(gw: Gateway, cluster: Cluster) -> None:
    _, token = new_user(cluster, "twice")
    r = gw.api("POST", "api/kernels", token, json={"name": "backendai-python"})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    try:
        check_replacements(gw, kid, token)
    finally:
        assert gw.api("DELETE", f"api/kernels/{kid}", token).status_code == 204
    assert_no_leaks(cluster, wait=60)


def check_replacements(gw: Gateway, kid: str, token: str) -> None:
    import websocket

    outcomes = []
    for _ in range(8):
        session = uuid.uuid4().hex
        url = f"{gw.ws_url}/api/kernels/{kid}/channels?session_id={session}"
        socks: list[Any] = [None, None]

        def connect(i: int) -> None:
            socks[i] = websocket.create_connection(url, header=[f"Authorization: token {token}"], timeout=30)

        threads = [threading.Thread(target=connect, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(socks), "a websocket did not open"
        # Every socket the gateway kept answers; one that was replaced is closed, never silent.
        got = sorted(kernel_info(s, session) for s in socks)
        outcomes.append(got)
        for s in socks:
            s.close()
        assert got == ["closed", "reply"], repr(outcomes)
