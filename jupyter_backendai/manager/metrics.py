"""Prometheus metrics of the manager, served at ``/metrics``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter as PCounter, Gauge, Histogram

REGISTRY = CollectorRegistry()

KERNELS = Gauge("backendai_kernels", "Kernels by state", ["status"], registry=REGISTRY)
AGENTS = Gauge("backendai_agents", "Agents by state", ["status"], registry=REGISTRY)
KERNEL_START_SECONDS = Histogram(
    "backendai_kernel_start_seconds", "Time from placement to a ready kernel", ["pooled"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60), registry=REGISTRY)
KERNEL_START_FAILURES = PCounter("backendai_kernel_start_failures", "Kernels that failed to start", registry=REGISTRY)
KERNELS_CULLED = PCounter("backendai_kernels_culled", "Kernels deleted for being idle past their owner's timeout",
                          registry=REGISTRY)
HTTP_REQUESTS = PCounter("backendai_http_requests", "REST requests", ["method", "status"], registry=REGISTRY)

STATES = ("PENDING", "CREATING", "RUNNING", "EXITED", "LOST")


def observe_kernels(kernels: Iterable[dict[str, Any]]) -> None:
    counts = Counter(k["status"] for k in kernels)
    for s in STATES:
        KERNELS.labels(status=s).set(counts.get(s, 0))


def observe_agents(statuses: Iterable[str]) -> None:
    counts = Counter(statuses)
    for s in ("ALIVE", "LOST"):
        AGENTS.labels(status=s).set(counts.get(s, 0))
