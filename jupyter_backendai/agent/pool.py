"""Warm pools: started, ready kernels per image, handed out on request and refilled behind.

A pool kernel is an ordinary kernel that nobody owns yet; handing it out costs a dict pop, so
a hit is as fast as the network round trip to the manager.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from .runtime import RuntimeKernel

log = logging.getLogger(__name__)


class WarmPool:
    max_backoff = 30.0  # seconds between refill attempts while starts keep failing

    def __init__(
        self,
        sizes: dict[str, int],
        spawn: Callable[[str], Awaitable[RuntimeKernel]],
    ):
        self.sizes = dict(sizes)
        self._spawn = spawn
        self._ready: dict[str, deque[RuntimeKernel]] = {}
        self._starting: dict[str, int] = {}
        self._refill: asyncio.Task[None] | None = None
        self._closed = False

    def names(self) -> set[str]:
        return {k.name for q in self._ready.values() for k in q}

    def count(self, image: str) -> int:
        return len(self._ready.get(image, ()))

    def wants(self, image: str) -> bool:
        return self.count(image) + self._starting.get(image, 0) < self.sizes.get(image, 0)

    def take(self, image: str, cpu: float, mem: int) -> RuntimeKernel | None:
        # Every request is a chance to top the pool up, hit or miss: a miss may mean an
        # earlier refill failed.
        self.refill_soon()
        for k in self._ready.get(image, ()):
            if k.cpu == cpu and k.mem == mem:
                self._ready[image].remove(k)
                return k
        return None

    def put(self, kernel: RuntimeKernel) -> None:
        self._ready.setdefault(kernel.image, deque()).append(kernel)

    def remove(self, name: str) -> RuntimeKernel | None:
        for q in self._ready.values():
            for k in q:
                if k.name == name:
                    q.remove(k)
                    self.refill_soon()
                    return k
        return None

    def drain(self) -> list[RuntimeKernel]:
        """Everything idle, for the caller to destroy (agent shutdown with --drain)."""
        out = [k for q in self._ready.values() for k in q]
        self._ready.clear()
        return out

    def refill_soon(self) -> None:
        if self._closed or (self._refill and not self._refill.done()):
            return
        self._refill = asyncio.create_task(self._fill())

    async def _fill(self) -> None:
        # One kernel at a time: a refill must not steal the CPU from a cold start a user waits for.
        failures = 0
        while not self._closed:
            image = next((i for i in self.sizes if self.wants(i)), None)
            if image is None:
                return
            self._starting[image] = self._starting.get(image, 0) + 1
            try:
                kernel = await self._spawn(image)
            except Exception as e:
                failures += 1
                delay = min(self.max_backoff, 0.5 * 2**failures)
                log.warning("warm pool for %s: %s (retrying in %.0f s)", image, e, delay)
                await asyncio.sleep(delay)
                continue
            finally:
                self._starting[image] -= 1
            failures = 0
            self.put(kernel)  # even when closing: a restarted agent re-adopts it

    async def close(self) -> None:
        self._closed = True
        if self._refill:
            self._refill.cancel()
