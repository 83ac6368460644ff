# SPDX-License-Identifier: LGPL-3.0-or-later
"""Websocket rows of execute_rtt.py: a kernel reached through a Jupyter Server's websocket.

  gateway websocket      `jupyter backendai gateway` -> Backend.AI kernel (what JupyterLab,
                         VS Code and Hydrogen get through the gateway)
  jupyter server websocket  a stock `jupyter server` -> a local ipykernel: what the websocket
                         hop costs without Backend.AI, in the same run

Both use the v1 websocket protocol (binary frames) that JupyterLab and VS Code negotiate.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.request
import uuid
from typing import Any

from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1, serialize_msg_to_ws_v1

from _cluster import BIN, Sandbox, free_port, log

V1 = "v1.kernel.websocket.jupyter.org"


class ServerProcess:
    """A Jupyter Server process (the gateway or a stock one) in the sandbox, with a token."""

    def __init__(self, sandbox: Sandbox, argv: list[str], token: str, name: str):
        self.port, self.token, self.name = free_port(), token, name
        self.dir = sandbox.dir / name
        self.dir.mkdir(parents=True)
        self.proc = subprocess.Popen(
            [*argv, f"--port={self.port}", "--ip=127.0.0.1", "--no-browser", f"--ServerApp.root_dir={self.dir}"],
            stdout=open(self.dir / "server.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        sandbox.on_close(self.stop)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {(self.dir / 'server.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{name} did not answer within 60 s")

    def api(self, method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=300) as r:
            return json.loads(r.read() or b"null")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def gateway(sandbox: Sandbox) -> ServerProcess:
    """The gateway of the benchmark's cluster (BACKENDAI_URL/TOKEN are set by Cluster.start)."""
    return ServerProcess(sandbox, [str(BIN / "jupyter-backendai"), "gateway"], os.environ["BACKENDAI_TOKEN"], "gateway")


def stock_server(sandbox: Sandbox) -> ServerProcess:
    token = secrets.token_hex(16)
    return ServerProcess(sandbox, [str(BIN / "jupyter"), "server", f"--IdentityProvider.token={token}", "--allow-root"], token,
                         "jupyter-server")


class WsSession:
    """One kernel started over REST, reached over its websocket (v1 protocol)."""

    def __init__(self, server: ServerProcess, kernel_name: str, code: str):
        import websocket  # websocket-client, a jupyter_server dependency

        self.server, self.code = server, code
        self.kid = server.api("POST", "api/kernels", {"name": kernel_name})["id"]
        self.session = uuid.uuid4().hex
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{server.port}/api/kernels/{self.kid}/channels?session_id={self.session}",
            header=[f"Authorization: token {server.token}"], subprotocols=[V1], timeout=120)
        if self.ws.subprotocol != V1:
            raise RuntimeError(f"{server.name} did not accept the v1 websocket protocol")
        self.rtt()  # the REST start returned once the kernel was ready; this proves the path
        log(f"{server.name}: kernel {self.kid} answers")

    def rtt(self) -> float:
        header = {"msg_id": uuid.uuid4().hex, "msg_type": "execute_request", "username": "bench",
                  "session": self.session, "date": "2026-01-01T00:00:00.000000Z", "version": "5.3"}
        content = {"code": self.code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}
        frame = serialize_msg_to_ws_v1([json.dumps(x).encode() for x in (header, {}, {}, content)], "shell")
        t0 = time.perf_counter()
        self.ws.send_binary(frame)
        while True:
            channel, parts = deserialize_msg_from_ws_v1(self.ws.recv())
            if channel == "shell" and json.loads(parts[1]).get("msg_id") == header["msg_id"]:
                break
        t = time.perf_counter() - t0
        status = json.loads(parts[3])["status"]
        if status != "ok":
            raise RuntimeError(f"execute failed through {self.server.name}: {status}")
        return t

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.server.api("DELETE", f"api/kernels/{self.kid}")
