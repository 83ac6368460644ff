"""The agent process: registers with the manager, heartbeats, and serves kernel RPCs.

It trusts nothing a kernel sends; it owns its host ports and its containers, and it keeps
running kernels running across its own restarts (they are re-adopted from the runtime).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import secrets
import socket
import uuid
from pathlib import Path
from typing import Any

import zmq.asyncio
from traitlets import Dict, Float, Integer, List, Unicode
from traitlets.config import LoggingConfigurable

from .. import names
from ..jail.policy import PolicyError, policy_for_image
from ..manager.scheduler import parse_mem
from ..rpc import CurveKeys, RpcClient, RpcError
from .activity import ActivityWatcher
from .pool import WarmPool
from .ports import PortPool, PortsExhausted
from .readiness import NotReady, wait_ready
from .runtime import ImageInfo, KernelLaunch, Runtime, RuntimeError_, RuntimeKernel, create_runtime

log = logging.getLogger(__name__)

HANDED_OUT = "handed-out"  # marker file in a kernel's dir once a user got the kernel


def _host_capacity() -> tuple[float, int]:
    cpu = float(len(os.sched_getaffinity(0)))
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return cpu, mem


class Agent(LoggingConfigurable):
    manager = Unicode(f"tcp://127.0.0.1:{names.MANAGER_RPC_PORT}", config=True,
                      help="The manager's agent-facing ZeroMQ address.")
    agent_id = Unicode("", config=True, help="Stable id; default: kept in the state dir.")
    state_dir = Unicode(config=True, help="Kernels' connection files and the agent id live here.")
    keys_dir = Unicode("", config=True, help="CURVE keys (manager.key, agent.key_secret); default: <state_dir>/../curve.")
    runtime = Unicode("auto", config=True, help="docker, process, or auto (docker when an engine answers).")
    advertise_ip = Unicode("127.0.0.1", config=True, help="Address clients use to reach kernels on this host.")
    bind_ip = Unicode("", config=True, help="Host address kernel ports are published on (default: advertise_ip).")
    port_range = Unicode(f"{names.KERNEL_PORT_RANGE[0]}-{names.KERNEL_PORT_RANGE[1]}", config=True)
    heartbeat_interval = Float(5.0, config=True, help="Seconds between heartbeats.")
    pool_sizes = Dict({names.IMAGE_PREFIX + "python:3.11": 1}, config=True,
                      help="Warm kernels kept per image.")
    labels = Dict({}, config=True, help="Agent labels the scheduler can match on.")
    cpu = Float(0.0, config=True, help="Cores offered (default: all).")
    mem = Unicode("", config=True, help="Memory offered, e.g. 8g (default: all).")
    start_timeout = Float(60.0, config=True, help="Seconds a kernel may take to answer kernel_info.")
    default_cpu = Float(1.0, config=True, help="Cores of a kernel started for the pool.")
    default_mem = Unicode("1g", config=True, help="Memory of a kernel started for the pool.")
    pids_limit = Integer(512, config=True)
    pool_env_ignore = List(Unicode(), ["JPY_SESSION_NAME", "KERNEL_*"], config=True,
                           help="Environment names a warm kernel may go without (so a request carrying them still hits the pool).")

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.rt: Runtime | None = None
        self.kernels: dict[str, RuntimeKernel] = {}   # handed out: name -> kernel
        self.kernel_ids: dict[str, str] = {}          # handed out here: name -> the manager's id
        self.catalog: list[ImageInfo] = []
        self._exits: dict[str, int] = {}             # kernels that died while starting
        self._starting: set[str] = set()
        self._registered = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._ctx = zmq.asyncio.Context()
        self.activity = ActivityWatcher(self._ctx)

    # ----- start / stop -------------------------------------------------------------------

    @property
    def kernels_dir(self) -> Path:
        return Path(self.state_dir) / "kernels"

    def _load_id(self) -> str:
        if self.agent_id:
            return self.agent_id
        f = Path(self.state_dir) / "agent-id"
        if f.exists():
            return f.read_text().strip()
        aid = f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(aid)
        return aid

    async def start(self) -> None:
        self.agent_id = self._load_id()
        self.kernels_dir.mkdir(parents=True, exist_ok=True)
        low, high = (int(x) for x in self.port_range.split("-"))
        self.ports = PortPool(low, high, host=self.bind_ip or self.advertise_ip)
        self.rt = await create_runtime(self.runtime, kernels_dir=self.kernels_dir, agent_id=self.agent_id,
                                       advertise_ip=self.advertise_ip, bind_ip=self.bind_ip or self.advertise_ip)
        self.log.info("agent %s: %s runtime", self.agent_id, self.rt.kind)
        self.catalog = await self.rt.images()
        self.pool = WarmPool({k: v for k, v in self.pool_sizes.items() if any(i.name == k for i in self.catalog)},
                             self._spawn_for_pool)
        self._adopted = await self.rt.adopt()
        for k in self._adopted:
            self.ports.claim(k.ports)
        self.rt.watch(self._on_exit)
        keys = CurveKeys(Path(self.keys_dir) if self.keys_dir else Path(self.state_dir).parent / "curve")
        self.rpc = RpcClient(self._ctx, keys, self.manager, self.agent_id, self._handle)
        self.rpc.start()
        self._tasks.append(asyncio.create_task(self._heartbeat_loop()))

    async def wait_registered(self, timeout: float) -> None:
        await asyncio.wait_for(self._registered.wait(), timeout)

    async def stop(self, drain: bool = False) -> None:
        """Leave users' kernels running (a restarted agent re-adopts them) unless ``drain``;
        idle warm kernels are only a cache and go."""
        for t in self._tasks:
            t.cancel()
        await self.pool.close()
        if self.rt:
            for k in [*self.pool.drain(), *(self.kernels.values() if drain else ())]:
                await self._destroy(k)
        self.activity.close()
        self.rpc.stop()
        if self.rt:
            await self.rt.close()
        self._ctx.term()

    # ----- registration and heartbeats ---------------------------------------------------

    def _capacity(self) -> dict[str, Any]:
        cpu, mem = _host_capacity()
        if self.cpu:
            cpu = self.cpu
        if self.mem:
            mem = parse_mem(self.mem)
        return {"cpu": cpu, "mem": mem, "gpu": 0}

    async def _register(self) -> None:
        reported = [*self.kernels.values(), *self._adopted]
        reply = await self.rpc.call("register", {
            "agent_id": self.agent_id, "runtime": self.rt.kind if self.rt else "?",
            "capacity": self._capacity(), "labels": self.labels, "advertise_ip": self.advertise_ip,
            "images": [i.to_dict() for i in self.catalog],
            "kernels": [k.to_dict() for k in reported],
        }, timeout=max(10.0, self.heartbeat_interval))
        assigned = set(reply.get("assigned", []))
        for k in reported:
            if k.name in assigned:
                self.kernels[k.name] = k
                self.activity.watch(k.name, k.connection)
            elif (self.pool.wants(k.image) and k.name not in self.pool.names()
                  and not (self.kernels_dir / k.name / HANDED_OUT).exists()):
                self.kernels.pop(k.name, None)
                self.pool.put(k)   # an idle kernel from before the restart serves as a warm one
            else:
                self.kernels.pop(k.name, None)
                await self._destroy(k)
        self._adopted = []
        self._registered.set()
        self.pool.refill_soon()
        self.log.info("agent %s registered with %s (%d kernels kept)", self.agent_id, self.manager, len(self.kernels))

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                if not self._registered.is_set():
                    await self._register()
                else:
                    self.kernel_ids = {n: i for n, i in self.kernel_ids.items() if n in self.kernels}
                    reply = await self.rpc.call("heartbeat", {"agent_id": self.agent_id,
                                                              "kernels": sorted(self.kernels),
                                                              "kernel_ids": dict(self.kernel_ids),
                                                              "activity": self.activity.report()},
                                                timeout=max(5.0, self.heartbeat_interval))
                    # Kernels the manager no longer knows (e.g. a start it gave up on): free them.
                    for name in reply.get("unknown", []):
                        kernel = self.kernels.pop(name, None)
                        if kernel is not None:
                            self.log.warning("destroying kernel %s: the manager does not know it", name)
                            await self._destroy(kernel)
            except RpcError as e:
                if e.code == "unregistered":  # the manager restarted and forgot us
                    self._registered.clear()
                    continue
                self.log.warning("manager %s: %s", self.manager, e.message)
            except Exception:
                self.log.exception("heartbeat failed")
            await asyncio.sleep(self.heartbeat_interval if self._registered.is_set() else 1.0)

    # ----- kernels -----------------------------------------------------------------------

    def _image(self, name: str) -> ImageInfo:
        for i in self.catalog:
            if i.name == name:
                return i
        raise RpcError("unknown_image", f"image {name} is not on agent {self.agent_id}")

    async def _start(self, image: str, argv: list[str] | None, env: dict[str, str], cpu: float, mem: int,
                     jail: dict[str, Any] | None = None) -> RuntimeKernel:
        """Cold start: ports, container, readiness. On any failure nothing is left."""
        assert self.rt is not None
        info = self._image(image)
        name = uuid.uuid4().hex
        try:
            ports = self.ports.take(5)
        except PortsExhausted as e:
            raise RpcError("no_ports", str(e)) from None
        launch = KernelLaunch(name=name, image=image, argv=argv or info.kernelspec["argv"], env=env,
                              cpu=cpu, mem=mem, ports=ports, key=secrets.token_hex(32),
                              kernel_dir=self.kernels_dir / name, pids=self.pids_limit,
                              jail_policy=self._jail_policy(image, jail))
        kernel: RuntimeKernel | None = None
        self._starting.add(name)
        try:
            kernel = await self.rt.start(launch)
            await wait_ready(kernel.connection, self.start_timeout,
                             lambda: f"kernel exited with code {self._exits[name]} before it was ready"
                             if name in self._exits else None)
            return kernel
        except BaseException as e:  # includes cancellation: never leave a container behind
            reason = str(e)
            if kernel is not None and name in self._exits:  # it died: its last words say why
                try:
                    tail = await self.rt.last_output(name)
                except Exception:
                    tail = ""
                reason += f" ({tail})" if tail else ""
            if kernel is not None or launch.kernel_dir.exists():
                await self.rt.destroy(name)
            self.ports.release(ports)
            if isinstance(e, (RuntimeError_, NotReady)):
                raise RpcError("start_failed", reason) from None
            raise
        finally:
            self._starting.discard(name)
            self._exits.pop(name, None)

    async def _spawn_for_pool(self, image: str) -> RuntimeKernel:
        return await self._start(image, None, {}, self.default_cpu, parse_mem(self.default_mem))

    async def _destroy(self, kernel: RuntimeKernel) -> None:
        assert self.rt is not None
        self.activity.forget(kernel.name)
        await self.rt.destroy(kernel.name)
        self.ports.release(kernel.ports)

    def _on_exit(self, name: str, code: int) -> None:
        pooled = self.pool.remove(name)
        if pooled is not None:
            asyncio.create_task(self._destroy(pooled))
            return
        kernel = self.kernels.pop(name, None)
        if kernel is None:
            if name in self._starting:
                self._exits[name] = code  # _start reports it
            return
        asyncio.create_task(self._exited(kernel, code))

    async def _exited(self, kernel: RuntimeKernel, code: int) -> None:
        # Freed first, reported then: once the manager says EXITED, nothing of it is left.
        try:
            await self._destroy(kernel)
        finally:
            await self.rpc.notify("kernel_exited", {"name": kernel.name, "exit_code": code})

    async def _handle(self, method: str, params: dict[str, Any]) -> Any:
        handler = getattr(self, f"rpc_{method}", None)
        if handler is None:
            raise RpcError("unknown_method", f"agent has no method {method}")
        return await handler(**params)

    @staticmethod
    def _jail_policy(image: str, overrides: dict[str, Any] | None) -> str:
        """The kernel's jail policy: the image's defaults with the manager's overrides."""
        try:
            return policy_for_image(image, overrides or {}).to_json()
        except PolicyError as e:
            raise RpcError("bad_policy", f"jail policy: {e}") from None

    async def rpc_create_kernel(self, image: str, cpu: float, mem: int, env: dict[str, str] | None = None,
                                argv: list[str] | None = None, jail: dict[str, Any] | None = None,
                                kernel_id: str = "", **_: Any) -> dict[str, Any]:
        env = env or {}
        # A warm kernel was started with the image's own argv and no user environment, so it
        # only serves requests that would have started the same thing.
        default_argv = argv is None or argv == self._image(image).kernelspec.get("argv")
        plain_env = all(any(fnmatch.fnmatchcase(k, p) for p in self.pool_env_ignore) for k in env)
        kernel = self.pool.take(image, cpu, mem) if default_argv and plain_env and not jail else None
        pooled = kernel is not None
        if kernel is None:
            kernel = await self._start(image, argv, env, cpu, mem, jail)
        # Marked on disk: after a restart, a kernel a user had must never become a warm one.
        try:
            (self.kernels_dir / kernel.name / HANDED_OUT).touch()
        except OSError:  # its dir is gone: so is the kernel, and its exit is on the way
            pass
        self.kernels[kernel.name] = kernel
        # A heartbeat may reach the manager before this answer does: the id lets it recognise
        # the kernel it is still waiting for instead of calling it unknown (and destroyed).
        self.kernel_ids[kernel.name] = kernel_id
        self.activity.watch(kernel.name, kernel.connection)
        return {"name": kernel.name, "connection": kernel.connection, "pooled": pooled}

    async def rpc_destroy_kernel(self, name: str, **_: Any) -> dict[str, Any]:
        kernel = self.kernels.pop(name, None)
        if kernel is not None:
            await self._destroy(kernel)
        elif self.rt is not None:
            await self.rt.destroy(name)
        return {"destroyed": kernel is not None}

    async def rpc_signal_kernel(self, name: str, signum: int, **_: Any) -> dict[str, Any]:
        if name not in self.kernels or self.rt is None:
            raise RpcError("unknown_kernel", f"kernel {name} is not on agent {self.agent_id}")
        try:
            await self.rt.signal(name, int(signum))
        except RuntimeError_ as e:
            raise RpcError("signal_failed", str(e)) from None
        return {}

    async def rpc_list_kernels(self, **_: Any) -> dict[str, Any]:
        return {"kernels": [k.to_dict() for k in self.kernels.values()],
                "pool": {img: self.pool.count(img) for img in self.pool.sizes}}

    async def rpc_refresh_images(self, **_: Any) -> dict[str, Any]:
        assert self.rt is not None
        self.catalog = await self.rt.images()
        return {"images": [i.to_dict() for i in self.catalog]}
