"""The agent's host-port pool and warm pool: pure bookkeeping, checked without Docker."""

from __future__ import annotations

import asyncio
import socket

import pytest

from jupyter_backendai.agent.pool import WarmPool
from jupyter_backendai.agent.ports import PortPool, PortsExhausted
from jupyter_backendai.agent.runtime import RuntimeKernel

from conftest import free_port


def test_ports_are_unique_and_given_back() -> None:
    low = free_port()
    pool = PortPool(low, low + 20, host="127.0.0.1")
    a, b = pool.take(5), pool.take(5)
    assert len(set(a) | set(b)) == 10
    pool.release(a)
    assert pool.in_use == frozenset(b)


def test_ports_skip_ones_held_by_other_programs() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        held = s.getsockname()[1]
        pool = PortPool(held, held + 10, host="127.0.0.1")
        assert held not in pool.take(5)


def test_exhaustion_is_clear_and_leaks_nothing() -> None:
    low = free_port()
    pool = PortPool(low, low + 6, host="127.0.0.1")
    pool.take(5)
    with pytest.raises(PortsExhausted, match="no 5 free host ports"):
        pool.take(5)
    assert len(pool.in_use) == 5  # the partial grab was returned


def _kernel(name: str, image: str = "img", cpu: float = 1.0, mem: int = 2**30) -> RuntimeKernel:
    return RuntimeKernel(name=name, image=image, ref=name, connection={}, cpu=cpu, mem=mem)


def test_warm_pool_hands_out_matching_kernels_and_refills() -> None:
    async def main() -> None:
        spawned: list[str] = []

        async def spawn(image: str) -> RuntimeKernel:
            spawned.append(image)
            return _kernel(f"k{len(spawned)}", image)

        pool = WarmPool({"img": 2}, spawn)
        pool.refill_soon()
        await asyncio.sleep(0.01)
        assert pool.count("img") == 2
        assert pool.take("img", 2.0, 2**30) is None          # other resources: a cold start
        assert pool.take("other", 1.0, 2**30) is None
        k = pool.take("img", 1.0, 2**30)
        assert k is not None and k.name == "k1"
        await asyncio.sleep(0.01)
        assert pool.count("img") == 2 and len(spawned) == 3   # refilled behind the hand-out
        assert pool.remove("k2") is not None                  # a pool kernel that died
        await asyncio.sleep(0.01)
        assert pool.count("img") == 2
        await pool.close()

    asyncio.run(main())


def test_warm_pool_retries_after_spawn_failures() -> None:
    broken = True

    async def main() -> None:
        nonlocal broken

        async def spawn(image: str) -> RuntimeKernel:
            if broken:
                raise RuntimeError("image broken")
            return _kernel("k", image)

        pool = WarmPool({"img": 1}, spawn)
        pool.max_backoff = 0.01
        pool.refill_soon()
        await asyncio.sleep(0.01)
        assert pool.count("img") == 0
        broken = False  # the image is fixed: the pool recovers by itself, without a new request
        await asyncio.sleep(0.1)
        assert pool.count("img") == 1
        await pool.close()

    asyncio.run(main())
