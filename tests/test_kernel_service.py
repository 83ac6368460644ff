# SPDX-License-Identifier: LGPL-3.0-or-later
"""The manager's kernel lifecycle under interleavings a real cluster produces only by chance.

The agent side is a scripted stand-in for its RPC link (``ScriptedAgents``, a fake named as
one): it lets a test put an agent's "kernel exited" report before its answer to
``destroy_kernel``, which is what a Docker engine's event stream does now and then. The store
is the real SQLite store.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from jupyter_backendai.manager.agents import AgentRegistry
from jupyter_backendai.manager.errors import ApiError
from jupyter_backendai.manager.kernels import KernelService
from jupyter_backendai.manager.store import Store

USER = {"name": "alice", "is_admin": False}
AGENT = "agent-1"


class ScriptedAgents:
    """Answers the manager's agent RPCs; hooks run inside a call, before it answers."""

    def __init__(self) -> None:
        self.service: KernelService | None = None
        self.running: set[str] = set()
        self.on_create: Callable[[], Awaitable[None]] | None = None
        self.on_destroy: Callable[[str], Awaitable[None]] | None = None

    async def call(self, agent_id: str, method: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        if method == "create_kernel":
            if self.on_create:
                await self.on_create()
            name = f"k-{params['kernel_id'][:8]}"
            self.running.add(name)
            return {"name": name, "connection": {"ip": "127.0.0.1", "key": "k", "shell_port": 1}}
        if method == "destroy_kernel":
            if self.on_destroy:
                await self.on_destroy(params["name"])
            self.running.discard(params["name"])
            return {}
        raise AssertionError(method)


async def service(tmp_path: Path) -> tuple[KernelService, ScriptedAgents, Store]:
    store = Store(tmp_path / "state.db")
    await store.open()
    agents = AgentRegistry(heartbeat_interval=60)
    agents.register(AGENT, {"capacity": {"cpu": 8, "mem": 2**34}, "images": [{"name": "python"}]})
    link = ScriptedAgents()
    svc = KernelService(store, agents, link, start_timeout=30)  # type: ignore[arg-type]
    link.service = svc
    await svc.load()
    return svc, link, store


async def started(svc: KernelService) -> dict[str, Any]:
    k = await svc.create(USER, "python")
    return await svc.wait_for(k["id"], {"RUNNING"}, 10)


def run(test: Callable[[KernelService, ScriptedAgents, Store], Awaitable[None]], tmp_path: Path) -> None:
    async def main() -> None:
        svc, link, store = await service(tmp_path)
        try:
            await asyncio.wait_for(test(svc, link, store), 20)
        finally:
            await svc.close()
            await store.close()
    asyncio.run(main())


def test_exit_reported_during_delete_never_shows_as_exited(tmp_path: Path) -> None:
    """A deleted kernel reads as RUNNING then gone: never EXITED, which a restarter would restart."""
    async def body(svc: KernelService, link: ScriptedAgents, store: Store) -> None:
        k = await started(svc)
        seen: list[str] = []

        async def exit_first(name: str) -> None:
            await svc.on_exit(AGENT, name, -9)
            seen.append(svc.get(k["id"], USER)["status"])
            with pytest.raises(ApiError) as e:  # nobody may bring it back meanwhile
                await svc.restart(k["id"], USER, 1)
            assert e.value.status == 409

        link.on_destroy = exit_first
        await svc.delete(k["id"], USER)
        assert seen == ["RUNNING"]
        with pytest.raises(ApiError) as e:
            svc.get(k["id"], USER)
        assert e.value.status == 404
        assert not link.running and not await store.list_kernels()

    run(body, tmp_path)


def test_delete_with_grace_lets_the_kernel_exit_by_itself(tmp_path: Path) -> None:
    """A client that sent shutdown_request deletes with a grace period: the kernel's own exit
    ends the wait (no destroy), and until the delete is done others read it as RUNNING."""
    async def body(svc: KernelService, link: ScriptedAgents, store: Store) -> None:
        k = await started(svc)
        destroyed: list[str] = []

        async def record(name: str) -> None:
            destroyed.append(name)

        link.on_destroy = record
        deleting = asyncio.create_task(svc.delete(k["id"], USER, grace=10))
        await asyncio.sleep(0.1)
        assert not deleting.done()
        await svc.on_exit(AGENT, k["name"], 0)
        assert svc.get(k["id"], USER)["status"] == "RUNNING"
        await asyncio.wait_for(deleting, 2)
        assert destroyed == [] and not await store.list_kernels()
        with pytest.raises(ApiError) as e:
            svc.get(k["id"], USER)
        assert e.value.status == 404

    run(body, tmp_path)


def test_delete_with_grace_destroys_a_kernel_that_does_not_exit(tmp_path: Path) -> None:
    async def body(svc: KernelService, link: ScriptedAgents, store: Store) -> None:
        k = await started(svc)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await svc.delete(k["id"], USER, grace=0.5)
        assert loop.time() - t0 >= 0.5
        assert not link.running and not await store.list_kernels()

    run(body, tmp_path)


def test_delete_while_creating_answers_when_the_start_ends(tmp_path: Path) -> None:
    """The container a start produces after its delete is handed back; the delete waits for that."""
    async def body(svc: KernelService, link: ScriptedAgents, store: Store) -> None:
        release = asyncio.Event()

        async def slow_start() -> None:
            await release.wait()

        link.on_create = slow_start
        k = await svc.create(USER, "python")
        await svc.wait_for(k["id"], {"CREATING"}, 5)
        deleting = asyncio.create_task(svc.delete(k["id"], USER))
        second = asyncio.create_task(svc.delete(k["id"], USER))
        await asyncio.sleep(0.1)
        assert not deleting.done() and not second.done()
        release.set()
        await asyncio.wait_for(asyncio.gather(deleting, second), 5)
        assert not link.running and not await store.list_kernels()
        assert svc.list(USER) == []

    run(body, tmp_path)


def test_exit_without_delete_is_kept_as_exited(tmp_path: Path) -> None:
    """A kernel that died on its own still reads EXITED with its code, for its owner's poll."""
    async def body(svc: KernelService, link: ScriptedAgents, store: Store) -> None:
        k = await started(svc)
        await svc.on_exit(AGENT, k["name"], 3)
        v = svc.get(k["id"], USER)
        assert (v["status"], v["exit_code"]) == ("EXITED", 3)
        assert not await store.list_kernels()

    run(body, tmp_path)


def test_heartbeat_ahead_of_the_start_answer_does_not_make_the_kernel_unknown(tmp_path: Path) -> None:
    """The agent's heartbeat can overtake its create_kernel answer; the kernel it names is the
    one still CREATING here (by id), not a stray to destroy. Real strays still are."""
    async def body(svc: KernelService, link: ScriptedAgents, store: Store) -> None:
        verdicts: list[list[str]] = []

        async def heartbeat_first() -> None:
            kid = next(iter(svc.kernels))
            name = f"k-{kid[:8]}"
            verdicts.append(svc.unknown_on_agent(AGENT, [name, "stray"], {name: kid, "stray": "nobody"}))

        link.on_create = heartbeat_first
        k = await started(svc)
        assert verdicts == [["stray"]]
        assert svc.unknown_on_agent(AGENT, [k["name"]], {}) == []
        await svc.delete(k["id"], USER)

    run(body, tmp_path)
