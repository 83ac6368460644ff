"""The manager process: wires the store, the agents' RPC endpoint, the kernel service and REST."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import zmq.asyncio
from tornado.httpserver import HTTPServer
from traitlets import Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

from .. import names
from ..rpc import CurveKeys, RpcError, RpcServer
from .agents import AgentRegistry
from .api import make_app
from .auth import authenticate, hash_token, issue_token
from .kernels import KernelService
from .store import Store

log = logging.getLogger(__name__)


class Manager(LoggingConfigurable):
    ip = Unicode("127.0.0.1", config=True, help="REST address.")
    port = Integer(names.MANAGER_PORT, config=True, help="REST port.")
    rpc_ip = Unicode("127.0.0.1", config=True, help="Address agents dial (use 0.0.0.0 for remote agents).")
    rpc_port = Integer(names.MANAGER_RPC_PORT, config=True, help="Agent-facing ZeroMQ port.")
    state_dir = Unicode(config=True, help="SQLite database, CURVE keys and the admin token live here.")
    heartbeat_interval = Float(5.0, config=True, help="Agents' heartbeat interval; 3 missed = LOST.")
    strategy = Unicode("concentrated", config=True, help="Placement: concentrated (bin-pack) or dispersed.")
    start_timeout = Float(120.0, config=True, help="Seconds an agent may take to start a kernel.")
    idle_timeout = Float(0.0, config=True,
                         help="Seconds an idle kernel is kept for users without their own idle_timeout (0: forever).")

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._ctx = zmq.asyncio.Context()
        self._tokens: dict[str, dict[str, Any]] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self.admin_token: str | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.ip in ("0.0.0.0", "") else self.ip
        return f"http://{host}:{self.port}"

    @property
    def keys(self) -> CurveKeys:
        return CurveKeys(Path(self.state_dir) / "curve")

    async def start(self) -> None:
        state = Path(self.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        self.keys.ensure()
        self.store = Store(state / "manager.sqlite")
        await self.store.open()
        await self._ensure_admin(state / "admin-token")
        self.agents = AgentRegistry(self.heartbeat_interval)
        self.agents.load(await self.store.list_agents())
        self.rpc = RpcServer(self._ctx, self.keys, f"tcp://{self.rpc_ip}:{self.rpc_port}", self._handle_rpc)
        await self.rpc.start()
        self.kernels = KernelService(self.store, self.agents, self.rpc, strategy=self.strategy,
                                     start_timeout=self.start_timeout, idle_timeout=self.idle_timeout)
        await self.kernels.load()
        self.http = HTTPServer(make_app(self))
        self.http.listen(self.port, self.ip)
        self._tasks.append(asyncio.create_task(self._watch_agents()))
        self._tasks.append(asyncio.create_task(self._cull_idle()))
        self.log.info("manager: REST on %s, agents on tcp://%s:%d", self.url, self.rpc_ip, self.rpc_port)

    async def stop(self) -> None:
        self.http.stop()
        for t in self._tasks:
            t.cancel()
        await self.kernels.close()
        await self.rpc.stop()
        await self.store.close()
        self._ctx.term()

    async def _ensure_admin(self, token_file: Path) -> None:
        """One admin user, with a token kept (mode 0600) in the state dir for `up` and the CLI."""
        if token_file.exists():
            self.admin_token = token_file.read_text().strip()
            if await authenticate(self.store, self.admin_token):
                return
        await self.store.add_user("admin", True)
        self.admin_token = await issue_token(self.store, "admin", "admin (state dir)")
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.admin_token)

    async def authenticate(self, token: str) -> dict[str, Any] | None:
        key = hash_token(token)
        if key not in self._tokens:  # tokens are never revoked while running: cache hits
            user = await authenticate(self.store, token)
            if user is None:
                return None
            self._tokens[key] = user
        return self._tokens[key]

    def agent_views(self) -> list[dict[str, Any]]:
        used = self.kernels.usage()
        from .scheduler import Slots
        return [a.to_dict(used.get(a.id, Slots())) for a in self.agents.agents.values()]

    async def _watch_agents(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.heartbeat_interval / 2))
            for agent_id in self.agents.expire():
                self.log.warning("agent %s missed 3 heartbeats: LOST", agent_id)
                await self.store.set_agent_status(agent_id, "LOST")
                await self.kernels.on_agent_lost(agent_id)

    async def _cull_idle(self) -> None:
        # Activity arrives with heartbeats, so looking more often than they come is pointless.
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self.kernels.cull()
            except Exception:
                self.log.exception("culling failed")

    async def _handle_rpc(self, method: str, params: dict[str, Any]) -> Any:
        agent_id = params.pop("_agent")
        if method == "register":
            info = {k: params.get(k) for k in ("capacity", "labels", "images", "runtime", "advertise_ip")}
            self.agents.register(agent_id, info)
            await self.store.upsert_agent(agent_id, info, "ALIVE")
            keep = await self.kernels.on_register(agent_id, params.get("kernels") or [])
            self.log.info("agent %s registered (%s runtime, %d images, %d kernels kept)", agent_id,
                          info["runtime"], len(info["images"] or []), len(keep))
            return {"assigned": keep}
        if method == "heartbeat":
            if not self.agents.heartbeat(agent_id):
                raise RpcError("unregistered", "register first")
            if isinstance(params.get("activity"), dict):
                self.kernels.on_activity(agent_id, params["activity"])
            ids = params.get("kernel_ids") if isinstance(params.get("kernel_ids"), dict) else {}
            return {"unknown": self.kernels.unknown_on_agent(agent_id, params.get("kernels") or [], ids)}
        if method == "kernel_exited":
            await self.kernels.on_exit(agent_id, params["name"], int(params.get("exit_code", -1)))
            return None
        raise RpcError("unknown_method", f"manager has no method {method}")
