"""Manager <-> agent messages over ZeroMQ: CURVE-encrypted, authenticated, with request ids.

Agents dial in with a DEALER socket (routing id = agent id) to the manager's ROUTER. Both
sides can issue requests; a request carries an id and the answer echoes it, so many calls can
be in flight on one socket. Frames are JSON: one frame on the DEALER side, the routing id plus
one frame on the ROUTER side.

Keys: the manager owns a server keypair and a cluster "agent" keypair, both kept in its state
dir (``curve/``). An agent needs the manager's public key and the agent secret key, which
``jupyter backendai up`` and a shared state dir provide locally; on another host the operator
copies ``curve/agent.key_secret`` and ``curve/manager.key``. The manager's ZAP handler accepts
only client keys in ``curve/authorized/``, so a peer without them cannot even connect.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import zmq
import zmq.asyncio
import zmq.auth
from zmq.auth.asyncio import AsyncioAuthenticator

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]


class RpcError(Exception):
    """The remote side answered a request with an error."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class RpcTimeout(RpcError):
    def __init__(self, method: str, timeout: float):
        super().__init__("timeout", f"{method}: no answer within {timeout:g} s")


@dataclass(frozen=True)
class CurveKeys:
    """The key files of one cluster, in ``<state_dir>/curve``."""

    directory: Path

    @property
    def authorized(self) -> Path:
        return self.directory / "authorized"

    def ensure(self) -> "CurveKeys":
        """Create the manager and agent keypairs once; later calls keep them."""
        self.authorized.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        for name in ("manager", "agent"):
            secret = self.directory / f"{name}.key_secret"
            if not secret.exists():
                zmq.auth.create_certificates(str(self.directory), name)
                secret.chmod(0o600)
        agent_pub = self.directory / "agent.key"
        link = self.authorized / "agent.key"
        if not link.exists():
            link.write_bytes(agent_pub.read_bytes())
        return self

    def server_pair(self) -> tuple[bytes, bytes]:
        return zmq.auth.load_certificate(str(self.directory / "manager.key_secret"))  # type: ignore[return-value]

    def client_pair(self) -> tuple[bytes, bytes]:
        return zmq.auth.load_certificate(str(self.directory / "agent.key_secret"))  # type: ignore[return-value]

    def server_public(self) -> bytes:
        public, _ = zmq.auth.load_certificate(str(self.directory / "manager.key"))
        return public


class _Pending:
    """Request ids and the futures waiting for their answers."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:8]
        self._futures: dict[str, asyncio.Future[Any]] = {}

    def new(self) -> tuple[str, asyncio.Future[Any]]:
        rid = f"{self._prefix}-{next(self._ids)}"
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[rid] = fut
        return rid, fut

    def drop(self, rid: str) -> None:
        self._futures.pop(rid, None)

    def resolve(self, msg: dict[str, Any]) -> None:
        fut = self._futures.pop(msg.get("id", ""), None)
        if fut is None or fut.done():
            return  # late answer to a request that already timed out
        if "error" in msg:
            err = msg["error"] or {}
            fut.set_exception(RpcError(err.get("code", "error"), err.get("message", "")))
        else:
            fut.set_result(msg.get("result"))

    def fail_all(self, exc: Exception) -> None:
        for fut in self._futures.values():
            if not fut.done():
                fut.set_exception(exc)
        self._futures.clear()


def _encode(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode()


async def _answer(handler: Handler, msg: dict[str, Any]) -> dict[str, Any]:
    """Run a handler for an incoming request and turn its outcome into a reply message."""
    rid = msg.get("id")
    try:
        result = await handler(msg["method"], msg.get("params") or {})
        return {"kind": "reply", "id": rid, "result": result}
    except RpcError as e:
        return {"kind": "reply", "id": rid, "error": {"code": e.code, "message": e.message}}
    except Exception as e:  # an unexpected failure is reported, not left to time out
        log.exception("rpc handler %s failed", msg.get("method"))
        return {"kind": "reply", "id": rid, "error": {"code": "internal", "message": f"{type(e).__name__}: {e}"}}


class RpcServer:
    """The manager's ROUTER: requests to agents by id, and a handler for what agents send."""

    def __init__(self, ctx: zmq.asyncio.Context, keys: CurveKeys, bind: str, handler: Handler):
        self._ctx = ctx
        self._keys = keys
        self._bind = bind
        self._handler = handler
        self._pending = _Pending()
        self._auth: AsyncioAuthenticator | None = None
        self._sock: zmq.asyncio.Socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._auth = AsyncioAuthenticator(self._ctx)
        self._auth.start()
        self._auth.configure_curve(domain="*", location=str(self._keys.authorized))
        sock = self._ctx.socket(zmq.ROUTER)
        public, secret = self._keys.server_pair()
        sock.curve_server = True
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        sock.router_mandatory = True  # sending to a gone agent raises instead of vanishing
        sock.linger = 0
        sock.bind(self._bind)
        self._sock = sock
        self._task = asyncio.create_task(self._recv_loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        self._pending.fail_all(RpcError("closed", "manager shutting down"))
        if self._sock is not None:
            self._sock.close(0)
        if self._auth is not None:
            self._auth.stop()

    async def _recv_loop(self) -> None:
        assert self._sock is not None
        while True:
            frames = await self._sock.recv_multipart()
            if len(frames) != 2:
                continue
            peer = frames[0].decode(errors="replace")
            try:
                msg = json.loads(frames[1])
            except ValueError:
                log.warning("dropping malformed message from agent %s", peer)
                continue
            if msg.get("kind") == "reply":
                self._pending.resolve(msg)
            else:
                task = asyncio.create_task(self._serve(peer, msg))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _serve(self, peer: str, msg: dict[str, Any]) -> None:
        async def bound(method: str, params: dict[str, Any]) -> Any:
            return await self._handler(method, {**params, "_agent": peer})

        reply = await _answer(bound, msg)
        if msg.get("kind") == "request":
            await self._send(peer, reply)

    async def _send(self, peer: str, msg: dict[str, Any]) -> None:
        assert self._sock is not None
        try:
            await self._sock.send_multipart([peer.encode(), _encode(msg)])
        except zmq.ZMQError as e:  # EHOSTUNREACH: the agent is not connected
            raise RpcError("unreachable", f"agent {peer} is not connected") from e

    async def call(self, agent_id: str, method: str, params: dict[str, Any], timeout: float = 30.0) -> Any:
        rid, fut = self._pending.new()
        try:
            await self._send(agent_id, {"kind": "request", "id": rid, "method": method, "params": params})
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise RpcTimeout(method, timeout) from None
        finally:
            self._pending.drop(rid)


class RpcClient:
    """The agent's DEALER: requests to the manager, and a handler for what the manager sends."""

    def __init__(self, ctx: zmq.asyncio.Context, keys: CurveKeys, connect: str, agent_id: str, handler: Handler):
        self._ctx = ctx
        self._keys = keys
        self._connect = connect
        self._agent_id = agent_id
        self._handler = handler
        self._pending = _Pending()
        self._sock: zmq.asyncio.Socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        public, secret = self._keys.client_pair()
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        sock.curve_serverkey = self._keys.server_public()
        sock.routing_id = self._agent_id.encode()
        sock.linger = 0
        sock.connect(self._connect)
        self._sock = sock
        self._task = asyncio.create_task(self._recv_loop())

    def stop(self) -> None:
        if self._task:
            self._task.cancel()
        self._pending.fail_all(RpcError("closed", "agent shutting down"))
        if self._sock is not None:
            self._sock.close(0)

    async def _recv_loop(self) -> None:
        assert self._sock is not None
        while True:
            frame = await self._sock.recv()
            try:
                msg = json.loads(frame)
            except ValueError:
                continue
            if msg.get("kind") == "reply":
                self._pending.resolve(msg)
            else:
                task = asyncio.create_task(self._serve(msg))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _serve(self, msg: dict[str, Any]) -> None:
        reply = await _answer(self._handler, msg)
        if msg.get("kind") == "request":
            await self.send(reply)

    async def send(self, msg: dict[str, Any]) -> None:
        assert self._sock is not None
        try:
            await self._sock.send(_encode(msg), flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # queue full while the manager is away: the caller's timeout notices

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        """Fire-and-forget message (events the manager needs at once, e.g. a kernel exit)."""
        await self.send({"kind": "notify", "method": method, "params": params})

    async def call(self, method: str, params: dict[str, Any], timeout: float = 10.0) -> Any:
        rid, fut = self._pending.new()
        try:
            await self.send({"kind": "request", "id": rid, "method": method, "params": params})
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise RpcTimeout(method, timeout) from None
        finally:
            self._pending.drop(rid)
