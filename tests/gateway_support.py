"""A `jupyter backendai gateway` process on a test cluster, its users, and a websocket client.

Shared by the gateway tests (REST, websockets, users, restart, jupyter_server --gateway-url,
@jupyterlab/services, JupyterLab in Chromium).
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message, deserialize_msg_from_ws_v1, serialize_msg_to_ws_v1,
)

from conftest import Cluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Gateway:
    cluster: Cluster
    dir: Path
    port: int = 0
    name: str = ""
    extra: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "Gateway":
        self.port = self.port or free_port()
        self.name = self.name or f"gateway-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cluster.spawn(self.name, [
            "gateway", f"--port={self.port}", "--ip=127.0.0.1", f"--ServerApp.root_dir={self.dir}",
            # Sessions survive a restart of the gateway (its kernels do anyway).
            f"--SessionManager.database_filepath={self.dir / 'sessions.db'}",
            "--BackendAIKernelManager.adopt_interval=1", *self.extra])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.cluster.procs[self.name]
            if proc.poll() is not None:
                raise AssertionError(f"gateway exited with {proc.returncode}:\n{self.cluster.log(self.name)[-3000:]}")
            try:
                if requests.get(f"{self.url}/api", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"gateway did not answer within {timeout} s:\n{self.cluster.log(self.name)[-3000:]}")

    def stop(self) -> None:
        if self.name in self.cluster.procs:
            self.cluster.stop(self.name)

    def api(self, method: str, path: str, token: str | None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers.setdefault("Authorization", f"token {token}")
        return requests.request(method, f"{self.url}/{path.lstrip('/')}", headers=headers, timeout=180, **kwargs)


def new_user(cluster: Cluster, prefix: str = "user") -> tuple[str, str]:
    """A fresh Backend.AI user; returns (name, token)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    r = cluster.api("POST", "users", json={"name": name})
    assert r.status_code == 201, r.text
    return name, r.json()["token"]


#: Registers comm target "echo" in an ipykernel: it answers each message with its buffers reversed.
COMM_ECHO = """
from ipykernel.comm import Comm
def _echo(comm, open_msg):
    @comm.on_msg
    def _got(msg):
        comm.send({"n": len(msg["buffers"])}, buffers=[bytes(b)[::-1] for b in msg["buffers"]])
get_ipython().kernel.comm_manager.register_target("echo", _echo)
"""


# ----- a websocket client for both protocols (framing: jupyter_server's own functions) -----

V1 = "v1.kernel.websocket.jupyter.org"


def _header(msg_type: str, session: str) -> dict[str, Any]:
    return {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "username": "test", "session": session,
            "date": "2026-01-01T00:00:00.000000Z", "version": "5.3"}


def pack_v1(msg: dict[str, Any], buffers: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    parts = [json.dumps(msg[k]).encode() for k in ("header", "parent_header", "metadata", "content")]
    return serialize_msg_to_ws_v1([*parts, *buffers], msg["channel"])


def unpack_v1(data: bytes) -> dict[str, Any]:
    channel, parts = deserialize_msg_from_ws_v1(data)
    msg: dict[str, Any] = {"channel": channel}
    for k, p in zip(("header", "parent_header", "metadata", "content"), parts[:4]):
        msg[k] = json.loads(p)
    msg["buffers"] = [bytes(b) for b in parts[4:]]
    msg["msg_type"] = msg["header"]["msg_type"]
    return msg


class KernelSocket:
    """A blocking websocket to /api/kernels/<id>/channels, v1 or legacy JSON protocol."""

    def __init__(self, gw: Gateway, kernel_id: str, token: str | None, protocol: str = V1,
                 via_path_token: bool = False) -> None:
        import websocket  # websocket-client

        self.protocol = protocol
        self.session = uuid.uuid4().hex
        if via_path_token:
            url = f"{gw.ws_url}/backendai-token/{token}/api/kernels/{kernel_id}/channels?session_id={self.session}"
            headers: list[str] = []
        else:
            url = f"{gw.ws_url}/api/kernels/{kernel_id}/channels?session_id={self.session}"
            headers = [f"Authorization: token {token}"] if token else []
        self.ws = websocket.create_connection(url, header=headers, timeout=60,
                                              subprotocols=[protocol] if protocol else None)
        self.negotiated = self.ws.subprotocol

    def send(self, channel: str, msg_type: str, content: dict[str, Any], buffers: list[bytes] = ()) -> str:  # type: ignore[assignment]
        msg = {"channel": channel, "header": _header(msg_type, self.session), "parent_header": {},
               "metadata": {}, "content": content}
        if self.negotiated == V1:
            self.ws.send_binary(pack_v1(msg, buffers))
        else:
            assert not buffers, "the legacy protocol sends buffers only kernel -> client"
            self.ws.send(json.dumps(msg))
        return msg["header"]["msg_id"]

    def recv(self, timeout: float = 60) -> dict[str, Any]:
        import websocket

        self.ws.settimeout(timeout)
        op, data = self.ws.recv_data()
        if op == websocket.ABNF.OPCODE_BINARY:
            if self.negotiated == V1:
                return unpack_v1(data)
            msg = deserialize_binary_message(data)  # legacy: JSON, then buffers
            msg["buffers"] = [bytes(b) for b in msg.get("buffers", [])]
            msg["msg_type"] = msg["header"]["msg_type"]
            return msg
        msg = json.loads(data)
        msg["msg_type"] = msg["header"]["msg_type"]
        msg.setdefault("buffers", [])
        return msg

    def execute(self, code: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(execute_reply, iopub messages of that request up to idle)."""
        return self.outputs(self.execute_request(code), timeout)

    def execute_request(self, code: str, allow_stdin: bool = False) -> str:
        return self.send("shell", "execute_request", {"code": code, "silent": False, "store_history": True,
                                                      "user_expressions": {}, "allow_stdin": allow_stdin,
                                                      "stop_on_error": True})

    def outputs(self, msg_id: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(the reply to msg_id, its iopub messages up to idle); other messages are skipped."""
        reply, out, idle = None, [], False
        deadline = time.monotonic() + timeout
        while not (reply and idle):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no reply to {msg_id} within {timeout} s (got {out})")
            m = self.recv(left)
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            if m["channel"] == "shell":
                reply = m
            elif m["channel"] == "iopub":
                out.append(m)
                if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                    idle = True
        return reply, out

    def close(self) -> None:
        self.ws.close()


def stdout_of(out: list[dict[str, Any]]) -> str:
    return "".join(m["content"]["text"] for m in out if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")


def result_of(out: list[dict[str, Any]]) -> str | None:
    r = [m["content"]["data"]["text/plain"] for m in out if m["msg_type"] == "execute_result"]
    return r[0] if r else None
