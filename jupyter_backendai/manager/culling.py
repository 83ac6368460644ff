# SPDX-License-Identifier: LGPL-3.0-or-later
"""Which kernels to cull: pure policy, decided from the agents' IOPub observations.

A kernel is culled when it has been idle (last IOPub message, or its start) for longer than
its owner's timeout. A busy kernel is never culled: a long computation prints nothing for
hours and is still wanted. A timeout of 0 or less means "never".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Timeout = Callable[[str], float]  # owner -> idle seconds allowed (<= 0: never cull)


def idle_kernels(kernels: Iterable[dict[str, Any]], timeout_for: Timeout, now: float) -> list[tuple[str, float]]:
    """(kernel id, seconds idle) of the RUNNING kernels past their owner's idle timeout."""
    out = []
    for k in kernels:
        if k.get("status") != "RUNNING" or k.get("deleting") or k.get("execution_state") == "busy":
            continue
        limit = timeout_for(k["owner"])
        if limit <= 0:
            continue
        idle = now - float(k.get("last_activity") or k["updated"])
        if idle > limit:
            out.append((k["id"], idle))
    return out
