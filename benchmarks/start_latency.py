# SPDX-License-Identifier: LGPL-3.0-or-later
"""Kernel start latency: request to the first kernel_info_reply, through the provisioner.

Rows (all measured in this run, interleaved round by round so drift hits every row alike):
  ipykernel (local)        AsyncKernelManager(kernel_name="python3"): a local process   [baseline]
  docker run (same image)  the agent's container options, connection file and published
                           ports, started with the docker CLI, no agent               [baseline]
  backendai, pool hit      AsyncKernelManager(kernel_name="backendai-python"), pool size 1;
                           before each run we wait until the pool has refilled
  backendai, pool empty    the same on a second private cluster with pool size 0 (cold start)

Each run: t0, start_kernel() (or `docker run -d`), open a client, send kernel_info_request
(re-sent every 0.2 s until answered) -> "first reply"; then client.wait_for_ready() as a
Jupyter front end would call it -> "ready". Every kernel is shut down before the next run.

Run: python benchmarks/start_latency.py [--runs N] [--warmup N]
Exit status is non-zero only when something fails; a slow figure is a figure, not a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any, Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import (  # noqa: E402
    KERNEL_NAME, Cluster, DockerRunKernel, Sandbox, docker_client, console as wide_console, fmt_ms, fmt_ratio, log, median, quantile,
)

RESEND = 0.2  # seconds between kernel_info_requests until one is answered


@dataclass
class Sample:
    first: float                 # t0 -> first kernel_info_reply
    ready: float                 # t0 -> wait_for_ready() returned
    launched: float              # t0 -> start_kernel() / `docker run -d` returned
    answered: int = 0            # index of the kernel_info_request that got the reply (0: the first)
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class Row:
    name: str
    run: Callable[[], Awaitable[Sample]]
    before: Callable[[], Awaitable[None]] | None = None   # untimed: e.g. wait for the pool
    baseline: bool = False
    note: str = ""
    samples: list[Sample] = field(default_factory=list)


async def first_reply(kc: Any, timeout: float = 120.0) -> tuple[float, int]:
    """Send kernel_info_request until one is answered; (time of the reply, which request)."""
    sent: list[str] = []
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        sent.append(kc.kernel_info())
        resend_at = time.perf_counter() + RESEND
        while (left := resend_at - time.perf_counter()) > 0:
            try:
                msg = await kc.get_shell_msg(timeout=left)
            except (Empty, asyncio.TimeoutError):
                break
            if msg["msg_type"] == "kernel_info_reply":
                t = time.perf_counter()
                parent = msg.get("parent_header", {}).get("msg_id")
                return t, sent.index(parent) if parent in sent else -1
    raise RuntimeError(f"no kernel_info_reply within {timeout:g} s")


def _docker_time(text: str) -> float:
    # RFC 3339 with nanoseconds: keep microseconds for datetime.
    head, _, frac = text.rstrip("Z").partition(".")
    return dt.datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}").replace(tzinfo=dt.timezone.utc).timestamp()


def container_times(name_or_id: str, wall0: float) -> dict[str, float]:
    c = docker_client().containers.get(name_or_id)
    return {"created": _docker_time(c.attrs["Created"]) - wall0,
            "started": _docker_time(c.attrs["State"]["StartedAt"]) - wall0}


# ----- the rows ---------------------------------------------------------------------------

async def run_kernel_manager(kernel_name: str, cluster: Cluster | None = None) -> Sample:
    from jupyter_client.manager import AsyncKernelManager

    if cluster is not None:  # the provisioner finds its manager through these
        os.environ["BACKENDAI_URL"], os.environ["BACKENDAI_TOKEN"] = cluster.url, cluster.token
        hits0, _ = cluster.starts(pooled=True)
        cold0, cold_sum0 = cluster.starts(pooled=False)
    km = AsyncKernelManager(kernel_name=kernel_name)
    wall0, t0 = time.time(), time.perf_counter()
    await km.start_kernel()
    t_launch = time.perf_counter()
    kc = km.client()
    try:
        kc.start_channels()
        t_first, answered = await first_reply(kc)
        await kc.wait_for_ready(timeout=120)
        t_ready = time.perf_counter()
        s = Sample(first=t_first - t0, ready=t_ready - t0, launched=t_launch - t0, answered=answered)
        if cluster is not None:
            hits1, _ = cluster.starts(pooled=True)
            cold1, cold_sum1 = cluster.starts(pooled=False)
            s.extra["pool_hit"] = hits1 - hits0
            if cold1 > cold0:
                s.extra["agent_start"] = cold_sum1 - cold_sum0
                conts = docker_client().containers.list(filters={"label": f"ai.backend.agent={cluster.agent_id}"})
                if len(conts) == 1:  # pool size 0: the one container is ours
                    s.extra.update(container_times(conts[0].id, wall0))
        return s
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


async def run_docker(sandbox: Sandbox) -> Sample:
    from jupyter_client.asynchronous import AsyncKernelClient

    k = DockerRunKernel(sandbox)
    cmd = k.argv()  # untimed: writes the connection file
    kc = AsyncKernelClient()
    kc.load_connection_info(k.connection)
    try:
        wall0, t0 = time.time(), time.perf_counter()
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"docker run failed: {err.decode().strip()}")
        t_launch = time.perf_counter()
        kc.start_channels(hb=False)
        t_first, answered = await first_reply(kc)
        await kc.wait_for_ready(timeout=120)
        t_ready = time.perf_counter()
        s = Sample(first=t_first - t0, ready=t_ready - t0, launched=t_launch - t0, answered=answered)
        s.extra.update(container_times(k.name, wall0))
        return s
    finally:
        kc.stop_channels()
        await asyncio.to_thread(k.remove)


# ----- report -----------------------------------------------------------------------------

def report(rows: list[Row], runs: int, elapsed: float) -> None:
    from rich.table import Table

    base = {r.name: median([s.first for s in r.samples]) for r in rows if r.baseline}
    t = Table(title=f"Kernel start: request -> first kernel_info_reply ({runs} runs per row, after warm-up)")
    t.add_column("mode")
    t.add_column("median", justify="right")
    t.add_column("p90", justify="right")
    for name in base:
        t.add_column(f"vs {name.split(' (')[0]}", justify="right")
    t.add_column("launch returned", justify="right")
    t.add_column("wait_for_ready", justify="right")
    t.add_column("1st request lost", justify="right")
    t.add_column("note")
    for r in rows:
        first = [s.first for s in r.samples]
        med = median(first)
        t.add_row(r.name, fmt_ms(med), fmt_ms(quantile(first, 0.9)),
                  *[fmt_ratio(med, b) for b in base.values()],
                  fmt_ms(median([s.launched for s in r.samples])),
                  fmt_ms(median([s.ready for s in r.samples])),
                  f"{sum(1 for s in r.samples if s.answered != 0)}/{len(r.samples)}",
                  r.note)
    console = wide_console()
    console.print(t)

    # Where the time goes, for the rows that start a container (medians, ms from t0).
    b = Table(title="Container starts: where the time goes (medians, from t0)")
    for col in ("mode", "container created", "container started", "agent placement->ready",
                "launch returned", "first reply", "wait_for_ready"):
        b.add_column(col, justify="left" if col == "mode" else "right")
    for r in rows:
        if not any("started" in s.extra for s in r.samples):
            continue
        ex = lambda key: median([s.extra[key] for s in r.samples if key in s.extra])  # noqa: E731
        b.add_row(r.name, fmt_ms(ex("created")), fmt_ms(ex("started")), fmt_ms(ex("agent_start")),
                  fmt_ms(median([s.launched for s in r.samples])), fmt_ms(median([s.first for s in r.samples])),
                  fmt_ms(median([s.ready for s in r.samples])))
    console.print(b)
    console.print("launch returned: start_kernel() (docker run: the CLI) came back. wait_for_ready: "
                  "jupyter_client's own wait, run after the first reply (it ends with a 0.2 s IOPub "
                  "flush). 1st request lost: runs in which the first kernel_info_request got no reply "
                  f"and a re-send (every {RESEND:g} s) was answered. agent placement->ready: the "
                  "manager's backendai_kernel_start_seconds for the run.", highlight=False)
    console.print(f"total {elapsed:.0f} s", highlight=False)


async def main_async(args: argparse.Namespace, sandbox: Sandbox) -> int:
    started = time.monotonic()
    log(f"sandbox {sandbox.dir}")
    warm = Cluster(sandbox, "pool1", pool_size=1).start()
    cold = Cluster(sandbox, "pool0", pool_size=0).start()
    log(f"clusters up: pool 1 at {warm.url}, pool 0 at {cold.url}")

    async def quiet() -> None:
        # Before every run of every row: the warm pool is full, so no refill runs alongside.
        await asyncio.to_thread(warm.wait_pool, 1)

    rows = [
        Row("ipykernel (local)", lambda: run_kernel_manager("python3"), quiet, baseline=True),
        Row("docker run (same image)", lambda: run_docker(sandbox), quiet, baseline=True),
        Row("backendai, pool hit", lambda: run_kernel_manager(KERNEL_NAME, warm), quiet),
        Row("backendai, pool empty", lambda: run_kernel_manager(KERNEL_NAME, cold), quiet),
    ]
    for i in range(args.warmup + args.runs):
        tag = "warm-up" if i < args.warmup else f"run {i - args.warmup + 1}/{args.runs}"
        for r in rows:
            if r.before:
                await r.before()
            s = await r.run()
            if i >= args.warmup:
                r.samples.append(s)
            log(f"{tag:>10}  {r.name:<24} first reply {fmt_ms(s.first):>9}  ready {fmt_ms(s.ready):>9}")
    hit = rows[2]
    hits = sum(int(s.extra.get("pool_hit", 0)) for s in hit.samples)
    hit.note = f"pool hits {hits}/{len(hit.samples)}"
    cold_row = rows[3]
    misses = sum(1 for s in cold_row.samples if "agent_start" in s.extra)
    cold_row.note = f"cold starts {misses}/{len(cold_row.samples)}"
    report(rows, args.runs, time.monotonic() - started)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=10, help="timed runs per row (default 10)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per row first (default 1)")
    args = p.parse_args()
    if args.runs < 1:
        p.error("--runs must be at least 1")
    sandbox: Sandbox | None = None
    try:
        sandbox = Sandbox()
        rc = asyncio.run(main_async(args, sandbox))
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        rc = 130
    except Exception as e:
        import traceback

        traceback.print_exc()
        log(f"FAILED: {type(e).__name__}: {e}")
        rc = 1
    finally:
        if sandbox is not None:
            sandbox.close()
    if sandbox is not None and sandbox.leaked:
        rc = rc or 1  # a leaked container is a failure
    return rc


if __name__ == "__main__":
    sys.exit(main())
