"""Manager/agent RPC over real ZeroMQ sockets: CURVE keys decide who may talk at all."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import zmq.asyncio

from jupyter_backendai.rpc import CurveKeys, RpcClient, RpcError, RpcServer, RpcTimeout

from conftest import free_port


async def _pair(tmp: Path, client_keys: CurveKeys | None = None):
    keys = CurveKeys(tmp / "curve").ensure()
    ctx = zmq.asyncio.Context()
    seen: list[tuple[str, dict]] = []

    async def on_manager(method: str, params: dict):
        seen.append((method, params))
        if method == "fail":
            raise RpcError("nope", "refused on purpose")
        return {"echo": params.get("x"), "agent": params["_agent"]}

    async def on_agent(method: str, params: dict):
        return {"agent_got": method}

    addr = f"tcp://127.0.0.1:{free_port()}"
    server = RpcServer(ctx, keys, addr, on_manager)
    await server.start()
    client = RpcClient(ctx, client_keys or keys, addr, "agent-1", on_agent)
    client.start()
    return ctx, server, client, seen


async def _close(ctx, server, client):
    client.stop()
    await server.stop()
    ctx.term()


def test_calls_both_ways_with_request_ids(tmp_path: Path) -> None:
    async def main() -> None:
        ctx, server, client, seen = await _pair(tmp_path)
        try:
            results = await asyncio.gather(*(client.call("echo", {"x": i}) for i in range(20)))
            assert [r["echo"] for r in results] == list(range(20))
            assert {r["agent"] for r in results} == {"agent-1"}
            assert await server.call("agent-1", "ping", {}) == {"agent_got": "ping"}
            with pytest.raises(RpcError) as e:
                await client.call("fail", {})
            assert e.value.code == "nope"
        finally:
            await _close(ctx, server, client)

    asyncio.run(main())


def test_unknown_agent_is_unreachable(tmp_path: Path) -> None:
    async def main() -> None:
        ctx, server, client, _ = await _pair(tmp_path)
        try:
            with pytest.raises(RpcError) as e:
                await server.call("no-such-agent", "ping", {}, timeout=1)
            assert e.value.code == "unreachable"
        finally:
            await _close(ctx, server, client)

    asyncio.run(main())


def test_peer_without_the_agent_key_is_refused(tmp_path: Path) -> None:
    """A client that knows the manager's public key but holds another secret key gets nowhere."""
    intruder = CurveKeys(tmp_path / "intruder").ensure()

    async def main() -> None:
        keys = CurveKeys(tmp_path / "curve").ensure()
        # Same server public key (it is no secret), a keypair of its own for the client.
        shutil.copy(keys.directory / "manager.key", intruder.directory / "manager.key")
        ctx, server, client, seen = await _pair(tmp_path, client_keys=intruder)
        try:
            with pytest.raises(RpcTimeout):
                await client.call("echo", {"x": 1}, timeout=1.5)
            assert seen == []  # the handler never ran
        finally:
            await _close(ctx, server, client)

    asyncio.run(main())
