"""Kernel lifecycle in the manager: queue, place, start on an agent, track, destroy.

Kernels live in memory (the manager is their only writer) and are written through to the
store, so reads such as the provisioner's frequent ``poll`` cost no I/O. Every state change
wakes its waiters, which is how ``POST /kernels`` can answer as soon as a kernel is RUNNING.

States: PENDING (queued) -> CREATING (placed, agent starting it) -> RUNNING -> EXITED (the
process ended) | LOST (its agent vanished). A kernel that fails to start is removed, and its
one-line reason is kept briefly so the client that waits for it can be told why. A kernel that
exits is removed too (its agent has already freed its container and ports), and its last view
is kept briefly so its owner's ``poll`` still reads EXITED and the exit code: a client such as
`jupyter console` only asks the kernel to shut down and never deletes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from typing import Any

from ..rpc import RpcError, RpcServer
from . import metrics
from .agents import AgentRegistry
from .culling import idle_kernels
from .errors import ApiError, not_found
from .jail_overrides import OverrideRefused, PolicyError, check_overrides
from .scheduler import Request, Slots, place, possible
from .store import Store

log = logging.getLogger(__name__)

ACTIVE = ("CREATING", "RUNNING")   # states that hold slots on an agent


class KernelService:
    def __init__(self, store: Store, agents: AgentRegistry, rpc: RpcServer, *,
                 strategy: str = "concentrated", start_timeout: float = 120.0, idle_timeout: float = 0.0):
        self.store = store
        self.agents = agents
        self.rpc = rpc
        self.strategy = strategy
        self.start_timeout = start_timeout
        self.idle_timeout = idle_timeout  # for users without their own; <= 0: never cull
        self.user_idle_timeouts: dict[str, float | None] = {}
        self.kernels: dict[str, dict[str, Any]] = {}
        self.failed: OrderedDict[str, str] = OrderedDict()   # recent start failures, bounded
        self.exited: OrderedDict[str, dict[str, Any]] = OrderedDict()  # recent exits, bounded
        self._changed: dict[str, asyncio.Event] = {}
        self._kick = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # ----- startup -----------------------------------------------------------------------

    async def load(self) -> None:
        """Take over the kernels a previous manager process left in the store."""
        for k in await self.store.list_kernels():
            if k["status"] in ("CREATING", "EXITED"):
                # CREATING: its agent may or may not have started it; the agent destroys the
                # container it cannot match to a RUNNING kernel when it registers again.
                # EXITED: its agent freed it already.
                await self.store.delete_kernel(k["id"])
                continue
            self.kernels[k["id"]] = k
        self.user_idle_timeouts = {u["name"]: u["idle_timeout"] for u in await self.store.list_users()}
        self._loop_task = asyncio.create_task(self._schedule_loop())
        self.kick()

    async def close(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()
        for t in list(self._tasks):
            t.cancel()

    def _spawn(self, coro: Any) -> None:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    # ----- change notification -----------------------------------------------------------

    def _notify(self, kid: str) -> None:
        ev = self._changed.pop(kid, None)
        if ev:
            ev.set()
        metrics.observe_kernels(self.kernels.values())

    async def wait_for(self, kid: str, states: set[str], timeout: float) -> dict[str, Any]:
        """Wait until the kernel is in one of ``states`` (or gone); return its latest view."""
        deadline = time.monotonic() + timeout
        while True:
            k = self.kernels.get(kid) or self.exited.get(kid)
            if k is None:
                if kid in self.failed:
                    raise ApiError(500, "start_failed", self.failed[kid])
                raise not_found("kernel", kid)
            left = deadline - time.monotonic()
            if k["status"] in states or left <= 0:
                return k
            await self._next_change(kid, left)

    async def _next_change(self, kid: str, timeout: float) -> None:
        """Until the kernel's next change is notified, or ``timeout`` seconds."""
        ev = self._changed.setdefault(kid, asyncio.Event())
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def _set(self, kid: str, **fields: Any) -> None:
        k = self.kernels.get(kid)
        if k is None:
            return
        k.update(fields)
        # Stored before waiters hear of it: an answer never runs ahead of the store.
        await self.store.update_kernel(kid, **fields)
        self._notify(kid)

    async def _forget(self, kid: str, failure: str | None = None) -> None:
        self.kernels.pop(kid, None)
        if failure:
            self.failed[kid] = failure
            while len(self.failed) > 1000:
                self.failed.popitem(last=False)
        await self.store.delete_kernel(kid)
        self._notify(kid)
        self.kick()

    # ----- queries -----------------------------------------------------------------------

    def get(self, kid: str, user: dict[str, Any]) -> dict[str, Any]:
        k = self.kernels.get(kid) or self.exited.get(kid)
        if k is None or (k["owner"] != user["name"] and not user["is_admin"]):
            if kid in self.failed and k is None:
                raise ApiError(500, "start_failed", self.failed[kid])
            raise not_found("kernel", kid)  # another user's kernel does not exist for you
        return k

    def list(self, user: dict[str, Any], all_users: bool = False) -> list[dict[str, Any]]:
        return [k for k in self.kernels.values()
                if k["owner"] == user["name"] or (all_users and user["is_admin"])]

    def usage(self) -> dict[str, Slots]:
        used: dict[str, Slots] = {}
        for k in self.kernels.values():
            if k["status"] in ACTIVE and k["agent_id"]:
                used[k["agent_id"]] = used.get(k["agent_id"], Slots()) + Slots.parse(k["resources"])
        return used

    def owner_usage(self) -> dict[str, Slots]:
        used: dict[str, Slots] = {}
        for k in self.kernels.values():
            if k["status"] in ACTIVE:
                used[k["owner"]] = used.get(k["owner"], Slots()) + Slots.parse(k["resources"])
        return used

    # ----- create ------------------------------------------------------------------------

    def _resources(self, image: dict[str, Any], resources: Any) -> Slots:
        if resources is None:
            resources = {}
        try:
            asked = Slots.parse(resources)
        except ValueError as e:
            raise ApiError(400, "bad_resources", str(e)) from None
        cpu = asked.cpu or max(1.0, float(image.get("min_cpu", 1)))
        mem = asked.mem or max(2**30, int(image.get("min_mem", 0)))
        if cpu < float(image.get("min_cpu", 0)) or mem < int(image.get("min_mem", 0)):
            raise ApiError(400, "bad_resources",
                           f"{image['name']} needs at least {image.get('min_cpu')} cpu and {image.get('min_mem')} bytes of memory")
        return Slots(cpu, mem, asked.gpu)

    async def create(self, user: dict[str, Any], image: str, resources: Any = None, env: dict[str, str] | None = None,
                     argv: list[str] | None = None, constraints: dict[str, str] | None = None,
                     jail: dict[str, Any] | None = None, tags: dict[str, str] | None = None) -> dict[str, Any]:
        catalog = self.agents.catalog()
        if image not in catalog:
            known = ", ".join(sorted(catalog)) or "none"
            raise ApiError(404, "unknown_image", f"no agent offers image {image!r} (known: {known})")
        slots = self._resources(catalog[image], resources)
        kid = str(uuid.uuid4())
        req = Request(kid, user["name"], image, slots, constraints or {}, time.time())
        reason = possible(self.agents.views(self.usage()), req)
        if reason:
            raise ApiError(400, "unschedulable", reason)
        try:
            jail = check_overrides(image, jail, bool(user.get("is_admin")))
        except PolicyError as e:
            raise ApiError(400, "bad_policy", f"jail policy: {e}") from None
        except OverrideRefused as e:
            raise ApiError(403, "forbidden", str(e)) from None
        # Tags are the client's own bookkeeping (e.g. the Jupyter kernel id a gateway re-adopts by).
        spec = {"env": env or {}, "argv": argv, "constraints": constraints or {}, "jail": jail, "tags": tags or {}}
        row = {"id": kid, "owner": user["name"], "image": image, "status": "PENDING", "agent_id": None,
               "name": None, "resources": slots.to_dict(), "spec": spec, "connection": None,
               "exit_code": None, "created": req.enqueued_at, "updated": req.enqueued_at}
        await self.store.add_kernel(kid, user["name"], image, row["resources"], spec)
        self.kernels[kid] = row
        self._notify(kid)
        self.kick()
        return row

    # ----- scheduling --------------------------------------------------------------------

    def kick(self) -> None:
        self._kick.set()

    async def _schedule_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._kick.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
            self._kick.clear()
            try:
                await self._schedule_once()
            except Exception:
                log.exception("scheduling pass failed")

    async def _schedule_once(self) -> None:
        pending = [k for k in self.kernels.values() if k["status"] == "PENDING"]
        if not pending:
            return
        queue = [Request(k["id"], k["owner"], k["image"], Slots.parse(k["resources"]),
                         k["spec"].get("constraints") or {}, k["created"]) for k in pending]
        decision = place(self.agents.views(self.usage()), queue, strategy=self.strategy,
                         owner_usage=self.owner_usage())
        for kid, reason in decision.impossible.items():
            if reason == "no schedulable agent":
                continue  # agents are away (e.g. a manager restart): wait for them to call in
            await self._forget(kid, f"cannot be placed: {reason}")
        for p in decision.placements:
            # In memory first, so that the next pass already counts these slots as used.
            self.kernels[p.kernel_id].update(status="CREATING", agent_id=p.agent_id)
            self._notify(p.kernel_id)
            await self.store.update_kernel(p.kernel_id, status="CREATING", agent_id=p.agent_id)
            self._spawn(self._start_on_agent(p.kernel_id))

    async def _start_on_agent(self, kid: str) -> None:
        k = self.kernels[kid]
        started = time.monotonic()
        try:
            res = await self.rpc.call(k["agent_id"], "create_kernel", {
                "kernel_id": kid, "image": k["image"], "cpu": k["resources"]["cpu"], "mem": k["resources"]["mem"],
                "env": k["spec"].get("env") or {}, "argv": k["spec"].get("argv"), "jail": k["spec"].get("jail") or {},
            }, timeout=self.start_timeout)
        except RpcError as e:
            log.warning("kernel %s failed to start on %s: %s", kid, k["agent_id"], e.message)
            metrics.KERNEL_START_FAILURES.inc()
            await self._forget(kid, f"kernel failed to start on agent {k['agent_id']}: {e.message}")
            return
        metrics.KERNEL_START_SECONDS.labels(pooled=str(bool(res.get("pooled"))).lower()).observe(time.monotonic() - started)
        if kid not in self.kernels or self.kernels[kid].get("deleting"):
            # Deleted while it was starting: give the container back at once.
            await self._destroy_on_agent(k["agent_id"], res["name"])
            await self._forget(kid)
            return
        await self._set(kid, status="RUNNING", name=res["name"], connection=res["connection"])

    # ----- operations on running kernels -------------------------------------------------

    async def _destroy_on_agent(self, agent_id: str, name: str) -> None:
        try:
            await self.rpc.call(agent_id, "destroy_kernel", {"name": name}, timeout=60)
        except RpcError as e:
            # A LOST agent destroys what it cannot match when it registers again.
            log.warning("destroy %s on %s: %s", name, agent_id, e.message)

    async def delete(self, kid: str, user: dict[str, Any], grace: float = 0.0) -> None:
        """Destroy a kernel and forget it. ``grace``: seconds to let it exit by itself first
        (its client has just sent it a shutdown_request), so that it can finish cleanly."""
        k = self.get(kid, user)
        if kid not in self.kernels:  # exited: its agent freed it before reporting the exit
            self.exited.pop(kid, None)
            return
        if k.get("deleting"):  # a second delete: answer once the first one has finished
            await self._gone(kid)
            return
        # Marked before the agent is told: the container's exit, which the agent may report
        # before it answers, must not turn a deleted kernel into an EXITED one that a poller
        # (another gateway's restarter) would read as a crash and restart.
        k["deleting"] = True
        if k["status"] == "CREATING":  # the start hands the container back when it ends
            await self._gone(kid)
            return
        deadline = time.monotonic() + grace
        while k["status"] == "RUNNING" and not k.get("exited_on_agent"):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await self._next_change(kid, left)
        if k["name"] and k["agent_id"] and k["status"] in ("RUNNING", "EXITED") and not k.get("exited_on_agent"):
            await self._destroy_on_agent(k["agent_id"], k["name"])
        await self._forget(kid)
        self.exited.pop(kid, None)

    async def _gone(self, kid: str) -> None:
        try:
            while True:
                await self.wait_for(kid, set(), 60.0)
        except ApiError:
            return

    async def signal(self, kid: str, user: dict[str, Any], signum: int) -> None:
        k = self.get(kid, user)
        if k["status"] != "RUNNING":
            raise ApiError(409, "not_running", f"kernel {kid} is {k['status']}")
        try:
            await self.rpc.call(k["agent_id"], "signal_kernel", {"name": k["name"], "signum": signum}, timeout=10)
        except RpcError as e:
            raise ApiError(502, "agent_error", e.message) from None

    async def restart(self, kid: str, user: dict[str, Any], wait: float) -> dict[str, Any]:
        """Same kernel id, a fresh kernel behind it (taken from the pool when one is warm)."""
        k = self.get(kid, user)
        if k.get("deleting"):
            raise ApiError(409, "deleting", f"kernel {kid} is being deleted")
        if k["status"] in ("PENDING", "CREATING"):
            raise ApiError(409, "not_running", f"kernel {kid} is {k['status']}")
        if kid not in self.kernels:  # exited: bring its record back
            k = self.exited.pop(kid)
            self.kernels[kid] = k
            await self.store.add_kernel(kid, k["owner"], k["image"], k["resources"], k["spec"])
        if k["name"] and k["agent_id"]:
            await self._destroy_on_agent(k["agent_id"], k["name"])
        await self._set(kid, status="PENDING", agent_id=None, name=None, connection=None, exit_code=None)
        self.kick()
        return await self.wait_for(kid, {"RUNNING"}, wait)

    # ----- what agents tell us -----------------------------------------------------------

    async def on_register(self, agent_id: str, reported: list[dict[str, Any]]) -> list[str]:
        """Match what a (re)registering agent runs against our records; return names to keep."""
        by_name = {r["name"]: r for r in reported}
        keep: list[str] = []
        for k in list(self.kernels.values()):
            if k["agent_id"] != agent_id or k["status"] not in ("RUNNING", "LOST"):
                continue
            r = by_name.get(k["name"])
            if r is None:
                await self._set(k["id"], status="LOST", exit_code=-1)
            else:
                keep.append(k["name"])
                if k["status"] == "LOST":
                    log.info("kernel %s is back with agent %s", k["id"], agent_id)
                await self._set(k["id"], status="RUNNING", connection=r["connection"], exit_code=None)
        self.kick()
        return keep

    def unknown_on_agent(self, agent_id: str, names: list[str], ids: dict[str, str] | None = None) -> list[str]:
        """Names an agent runs that are no kernel of ours. One whose start answer is still on
        its way (we have no name for it yet) is known by the kernel id the agent was given."""
        mine = {k["name"] for k in self.kernels.values() if k["agent_id"] == agent_id}
        starting = {k["id"] for k in self.kernels.values() if k["agent_id"] == agent_id and k["status"] == "CREATING"}
        ids = ids or {}
        return [n for n in names if n not in mine and ids.get(n) not in starting]

    async def on_exit(self, agent_id: str, name: str, exit_code: int) -> None:
        for k in list(self.kernels.values()):
            if k["agent_id"] == agent_id and k["name"] == name and k["status"] == "RUNNING":
                # The agent has already removed the container and freed its ports.
                if k.get("deleting"):
                    # Still RUNNING to everyone else until delete() forgets it (it may be
                    # waiting for this exit): an EXITED kernel would read as a crash to
                    # another server's restarter, which would start a new one.
                    k["exited_on_agent"] = True
                    self._notify(k["id"])
                    continue
                k.update(status="EXITED", exit_code=exit_code, updated=time.time())
                self.exited[k["id"]] = k
                while len(self.exited) > 1000:
                    self.exited.popitem(last=False)
                await self._forget(k["id"])
        self.kick()

    def on_activity(self, agent_id: str, report: dict[str, dict[str, Any]]) -> None:
        """An agent's IOPub observations: seconds since each kernel's last message, its state."""
        now = time.time()
        by_name = {k["name"]: k for k in self.kernels.values() if k["agent_id"] == agent_id and k["name"]}
        for name, seen in report.items():
            k = by_name.get(name)
            if k is None or not isinstance(seen, dict):
                continue
            try:
                k["last_activity"] = now - max(0.0, float(seen.get("idle_seconds", 0)))
            except (TypeError, ValueError):
                continue
            k["execution_state"] = str(seen.get("state") or "unknown")

    # ----- culling -----------------------------------------------------------------------

    def idle_timeout_for(self, owner: str) -> float:
        own = self.user_idle_timeouts.get(owner)
        return self.idle_timeout if own is None else float(own)

    async def set_idle_timeout(self, owner: str, seconds: float | None) -> bool:
        if not await self.store.set_idle_timeout(owner, seconds):
            return False
        self.user_idle_timeouts[owner] = seconds
        return True

    async def cull(self) -> list[str]:
        """Delete kernels idle past their owner's timeout; return their ids."""
        culled = []
        for kid, idle in idle_kernels(list(self.kernels.values()), self.idle_timeout_for, time.time()):
            k = self.kernels.get(kid)
            if k is None or k.get("deleting"):
                continue
            log.info("culling kernel %s of %s: idle for %.0f s (limit %g s)", kid, k["owner"], idle,
                     self.idle_timeout_for(k["owner"]))
            metrics.KERNELS_CULLED.inc()
            await self.delete(kid, {"name": k["owner"], "is_admin": True})
            culled.append(kid)
        return culled

    async def on_agent_lost(self, agent_id: str) -> None:
        for k in list(self.kernels.values()):
            if k["agent_id"] == agent_id and k["status"] in ACTIVE:
                await self._set(k["id"], status="LOST", exit_code=-1)
        self.kick()
