"""Host ports for kernels, handed out from a fixed range and always given back."""

from __future__ import annotations

import socket
from collections.abc import Iterable


class PortsExhausted(Exception):
    pass


def _is_free(port: int, host: str) -> bool:
    # A port some other program on the host already holds would make the kernel fail to
    # bind (process runtime) or Docker fail to publish it: skip it instead of failing later.
    # SO_REUSEADDR as the real binders (libzmq, docker-proxy) use it: a listener still makes
    # bind fail, but connections of an earlier kernel lingering in TIME_WAIT (60 s) do not.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class PortPool:
    """Ports in ``[low, high]``; ``take`` and ``release`` are the only ways in and out."""

    def __init__(self, low: int, high: int, host: str = "0.0.0.0"):
        self._low, self._high, self._host = low, high, host
        self._used: set[int] = set()
        self._next = low

    @property
    def in_use(self) -> frozenset[int]:
        return frozenset(self._used)

    def take(self, n: int) -> list[int]:
        got: list[int] = []
        span = self._high - self._low + 1
        for _ in range(span):
            port = self._next
            self._next = self._low if port >= self._high else port + 1
            if port not in self._used and _is_free(port, self._host):
                self._used.add(port)
                got.append(port)
                if len(got) == n:
                    return got
        self.release(got)
        raise PortsExhausted(f"no {n} free host ports left in {self._low}-{self._high}")

    def claim(self, ports: Iterable[int]) -> None:
        """Mark ports of a re-adopted kernel as used."""
        self._used.update(ports)

    def release(self, ports: Iterable[int]) -> None:
        for p in ports:
            self._used.discard(p)
