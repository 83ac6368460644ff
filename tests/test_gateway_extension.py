# SPDX-License-Identifier: LGPL-3.0-or-later
"""The gateway extension loaded in-process by pytest-jupyter (`jp_fetch`, `jp_ws_fetch`).

The other gateway tests drive the `jupyter backendai gateway` process; these load the
extension into pytest-jupyter's ServerApp, as any jupyter_server extension is tested, with the
same server configuration the CLI applies. Kernels still run on the session Docker cluster.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pytest_jupyter.jupyter_core import *  # noqa: F401,F403  (fixtures, scoped to this module)
from pytest_jupyter.jupyter_server import *  # noqa: F401,F403
from pytest_jupyter.pytest_tornasync import *  # noqa: F401,F403
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from conftest import Cluster, assert_no_leaks, wait_until
from gateway_support import COMM_ECHO, V1, new_user, pack_v1, unpack_v1
from jupyter_backendai.gateway.app import GatewayApp

pytestmark = pytest.mark.docker



@pytest.fixture
def jp_server_config(cluster: Cluster) -> Config:
    server = dict(GatewayApp.serverapp_config)
    # Terminals off, as the CLI has them (pytest-jupyter would load them otherwise).
    server["jpserver_extensions"] = {"jupyter_backendai.gateway": True, "jupyter_server_terminals": False}
    return Config({"ServerApp": server, "BackendAIKernelManager": {"adopt_interval": 1.0}})


@pytest.fixture
def users(cluster: Cluster) -> dict[str, str]:
    return {who: new_user(cluster, who)[1] for who in ("ext-alice", "ext-bob")}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def run(loop: Any, coro: Any) -> Any:
    return loop.run_until_complete(coro)


class Channels:
    """One kernel websocket through jp_ws_fetch, in either protocol."""

    def __init__(self, ws: Any, protocol: str | None):
        self.ws, self.v1, self.session = ws, protocol == V1, f"s-{time.monotonic_ns()}"

    async def send(self, channel: str, msg_type: str, content: dict[str, Any], buffers: list[bytes] = ()) -> str:  # type: ignore[assignment]
        msg_id = f"{msg_type}-{time.monotonic_ns()}"
        msg = {"header": {"msg_id": msg_id, "msg_type": msg_type, "session": self.session, "username": "t",
                          "date": "2026-01-01T00:00:00Z", "version": "5.4"},
               "parent_header": {}, "metadata": {}, "content": content, "channel": channel}
        if self.v1:
            await self.ws.write_message(pack_v1(msg, buffers), binary=True)
        else:
            await self.ws.write_message(json.dumps(msg))
        return msg_id

    async def recv(self) -> dict[str, Any]:
        raw = await self.ws.read_message()
        assert raw is not None, "websocket closed"
        if self.v1:
            return unpack_v1(raw)
        msg = json.loads(raw)
        msg["msg_type"] = msg["header"]["msg_type"]
        return msg

    async def execute(self, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        msg_id = await self.send("shell", "execute_request", {"code": code, "silent": False, "store_history": True,
                                                               "user_expressions": {}, "allow_stdin": False})
        reply, out, idle = None, [], False
        while not (reply and idle):
            m = await self.recv()
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            if m["channel"] == "shell":
                reply = m
            else:
                out.append(m)
                idle = idle or (m["msg_type"] == "status" and m["content"]["execution_state"] == "idle")
        return reply, out


def test_rest_kernels_sessions_kernelspecs(jp_fetch: Any, jp_asyncio_loop: Any, users: dict[str, str],
                                           cluster: Cluster) -> None:
    alice, bob = auth(users["ext-alice"]), auth(users["ext-bob"])

    async def body() -> None:
        specs = json.loads((await jp_fetch("api", "kernelspecs", headers=alice)).body)
        assert specs["default"] == "backendai-python"
        py = specs["kernelspecs"]["backendai-python"]
        assert py["spec"]["display_name"] == "Python 3 (Backend.AI)" and "logo-64x64" in py["resources"]

        assert json.loads((await jp_fetch("api", "kernels", headers=alice)).body) == []  # 200, not 403
        r = await jp_fetch("api", "sessions", method="POST", headers=alice, body=json.dumps(
            {"path": "a.ipynb", "type": "notebook", "name": "a.ipynb", "kernel": {"name": "backendai-python"}}),
            request_timeout=180)
        assert r.code == 201
        session = json.loads(r.body)
        kid = session["kernel"]["id"]
        assert [k["id"] for k in json.loads((await jp_fetch("api", "kernels", headers=alice)).body)] == [kid]
        assert [s["id"] for s in json.loads((await jp_fetch("api", "sessions", headers=alice)).body)] == [session["id"]]
        # Bob sees nothing of it, and its id does not exist for him.
        assert json.loads((await jp_fetch("api", "kernels", headers=bob)).body) == []
        assert json.loads((await jp_fetch("api", "sessions", headers=bob)).body) == []
        with pytest.raises(HTTPClientError) as e:
            await jp_fetch("api", "kernels", kid, headers=bob)
        assert e.value.code == 404
        r = await jp_fetch("api", "sessions", session["id"], method="DELETE", headers=alice)
        assert r.code == 204
        assert json.loads((await jp_fetch("api", "kernels", headers=alice)).body) == []

    run(jp_asyncio_loop, body())
    assert_no_leaks(cluster, wait=60)


@pytest.mark.parametrize("protocol", [V1, None], ids=["v1", "legacy"])
def test_websocket_protocols_and_binary_buffers(protocol: str | None, jp_fetch: Any, jp_ws_fetch: Any,
                                                jp_asyncio_loop: Any, users: dict[str, str], cluster: Cluster) -> None:
    alice = auth(users["ext-alice"])

    async def body() -> None:
        r = await jp_fetch("api", "kernels", method="POST", headers=alice, request_timeout=180,
                           body=json.dumps({"name": "backendai-python"}))
        kid = json.loads(r.body)["id"]
        ws = await jp_ws_fetch("api", "kernels", kid, "channels", headers=dict(alice),
                               params={"session_id": "s1"}, subprotocols=[V1] if protocol else None)
        assert ws.selected_subprotocol == protocol
        ch = Channels(ws, protocol)
        reply, out = await ch.execute("import os\nprint('uid', os.getuid())\n6 * 7")
        assert reply["content"]["status"] == "ok"
        assert [m["content"]["text"] for m in out if m["msg_type"] == "stream"] == ["uid 1000\n"]
        assert [m["content"]["data"]["text/plain"] for m in out if m["msg_type"] == "execute_result"] == ["42"]
        if protocol == V1:  # buffers from client to kernel exist only in the v1 protocol
            assert (await ch.execute(COMM_ECHO))[0]["content"]["status"] == "ok"
            payload = bytes(range(256)) * 32 + b"\x00"
            await ch.send("shell", "comm_open", {"comm_id": "c1", "target_name": "echo", "data": {}})
            await ch.send("shell", "comm_msg", {"comm_id": "c1", "data": {}}, buffers=[payload])
            while True:
                m = await ch.recv()
                if m["msg_type"] == "comm_msg" and m["content"].get("comm_id") == "c1":
                    break
            assert m["content"]["data"] == {"n": 1} and m["buffers"] == [payload[::-1]]
        ws.close()
        assert (await jp_fetch("api", "kernels", kid, method="DELETE", headers=alice)).code == 204

    run(jp_asyncio_loop, body())
    assert_no_leaks(cluster, wait=60)
