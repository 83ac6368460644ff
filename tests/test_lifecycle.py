"""Kernel lifecycle through jupyter_client's AsyncKernelManager and the Backend.AI provisioner.

Interrupts (as a control message, and as a signal through manager, agent and tini), restart,
shutdown, and re-attaching a new KernelManager to a running kernel (what a restarted server
does), each on a real Docker kernel and each leaving nothing behind.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest
import pytest_asyncio
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import KernelProvisionerFactory

from conftest import TRACE_CODE, Cluster, KernelTrace, assert_no_leaks, parse_traces, trace_remote

pytestmark = [pytest.mark.docker, pytest.mark.asyncio]

KERNEL = "backendai-python"


# ----- helpers -----------------------------------------------------------------------------

_started: list[AsyncKernelManager] = []


@pytest_asyncio.fixture(autouse=True)
async def _no_kernel_outlives_its_test() -> Any:
    """A failed test still shuts its kernels down: left running, they would hold the cluster's
    slots and every later test would queue behind them."""
    _started.clear()
    yield
    for km in _started:
        if await km.is_alive():
            await km.shutdown_kernel(now=True)


async def start(cluster: Cluster) -> tuple[AsyncKernelManager, Any]:
    km = AsyncKernelManager(kernel_name=KERNEL)
    _started.append(km)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return km, kc


async def run(kc: Any, code: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Execute; return the reply and the iopub outputs it caused."""
    outputs: list[dict[str, Any]] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] in ("stream", "execute_result", "error", "display_data"):
            outputs.append(msg)

    reply = await kc.execute_interactive(code, timeout=timeout, output_hook=hook)
    return reply, outputs


async def value(kc: Any, expr: str) -> str:
    reply, outputs = await run(kc, expr)
    assert reply["content"]["status"] == "ok", reply["content"]
    results = [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"]
    assert len(results) == 1, outputs
    return results[0]


async def trace(cluster: Cluster, km: AsyncKernelManager, kc: Any) -> list[KernelTrace]:
    """The kernel as it sees itself (container, uid, ports) and as the manager sees it."""
    reply, outputs = await run(kc, TRACE_CODE)
    assert reply["content"]["status"] == "ok", reply["content"]
    seen = parse_traces("".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream"))
    assert len(seen) == 1 and seen[0].in_container and seen[0].uid == 1000, seen
    remote = trace_remote(cluster, km.provisioner._remote_id)  # type: ignore[union-attr]
    assert seen[0].ports == remote.ports
    return [seen[0], remote]


# The cell says when it is about to block, and the interrupt is sent only after that. Sent at
# execute_input instead, the SIGINT can land in the instant before time.sleep() enters the
# kernel: CPython then only notes it and checks it when the sleep is over (seen on 1 kernel in
# 6 here, local kernels too in principle). That is a race in the test, not in the product.
SLEEP = "import time; print('sleeping', flush=True); time.sleep(60)"


async def started(kc: Any, msg_id: str, timeout: float = 30) -> None:
    """Wait until the cell of msg_id (SLEEP) is about to block in time.sleep."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream"
                and "sleeping" in msg["content"]["text"]):
            return


async def reply_to(kc: Any, msg_id: str, timeout: float) -> dict[str, Any]:
    """The shell reply to msg_id; raises (queue.Empty) if it does not come within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await kc.get_shell_msg(timeout=max(0.0, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


async def stop(km: AsyncKernelManager, kc: Any, **kwargs: Any) -> None:
    kc.stop_channels()
    await km.shutdown_kernel(**kwargs)


async def interrupted(kc: Any, msg_id: str, timeout: float) -> None:
    """The cell of msg_id was interrupted (its reply came within timeout) and the kernel is idle
    again: ipykernel aborts what reaches it before then (stop_on_error), as any client sees."""
    reply = await reply_to(kc, msg_id, timeout)
    assert reply["content"]["status"] == "error", reply["content"]
    assert reply["content"]["ename"] == "KeyboardInterrupt", reply["content"]
    while True:
        msg = await kc.get_iopub_msg(timeout=30)
        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"):
            return


# ----- tests -------------------------------------------------------------------------------

async def test_interrupt_message(cluster: Cluster) -> None:
    km, kc = await start(cluster)
    assert km.kernel_spec.interrupt_mode == "message"
    traces = await trace(cluster, km, kc)
    assert (await run(kc, "x = 1"))[0]["content"]["status"] == "ok"
    msg_id = kc.execute(SLEEP)
    await started(kc, msg_id)
    await km.interrupt_kernel()          # interrupt_request on the control channel
    await interrupted(kc, msg_id, timeout=2)   # within 2 s
    assert await value(kc, "x") == "1"
    await stop(km, kc)
    assert_no_leaks(cluster, traces)


async def test_interrupt_signal(cluster: Cluster) -> None:
    km, kc = await start(cluster)
    traces = await trace(cluster, km, kc)
    assert (await run(kc, "x = 1"))[0]["content"]["status"] == "ok"
    msg_id = kc.execute(SLEEP)
    await started(kc, msg_id)
    # The fallback path: REST to the manager, RPC to the agent, docker kill -s INT, tini -g.
    await km.provisioner.send_signal(signal.SIGINT)  # type: ignore[union-attr]
    await interrupted(kc, msg_id, timeout=30)
    assert await value(kc, "x") == "1"
    # The kernel survived the signal and still works.
    assert await value(kc, "x + 41") == "42"
    await stop(km, kc)
    assert_no_leaks(cluster, traces)


async def test_restart(cluster: Cluster) -> None:
    km, kc = await start(cluster)
    before = await trace(cluster, km, kc)
    assert (await run(kc, "x = 1"))[0]["content"]["status"] == "ok"
    remote_before = km.provisioner._remote_id  # type: ignore[union-attr]
    conn_before = km.get_connection_info()
    kc.stop_channels()

    await km.restart_kernel()
    remote_after = km.provisioner._remote_id  # type: ignore[union-attr]
    conn_after = km.get_connection_info()
    assert remote_after and remote_after != remote_before
    assert (conn_after["shell_port"], conn_after["key"]) != (conn_before["shell_port"], conn_before["key"])
    # The old kernel is gone for good: container, ports and row.
    assert [r["id"] for r in cluster.kernel_rows()] == [remote_after]
    assert_no_leaks_of(cluster, before)

    # Restart, then execute at once: the request waits in ZeroMQ until the kernel reads it.
    kc = km.client()
    kc.start_channels()
    msg_id = kc.execute("y = 6 * 7\ny")
    reply = await reply_to(kc, msg_id, timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    reply, outputs = await run(kc, "x")
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "NameError", reply["content"]
    assert await value(kc, "y") == "42"
    after = await trace(cluster, km, kc)
    assert after[0].container != before[0].container

    # now=True restart too (the kill hook path) still yields a fresh, working kernel.
    kc.stop_channels()
    await km.restart_kernel(now=True)
    assert km.provisioner._remote_id not in (remote_before, remote_after)  # type: ignore[union-attr]
    assert_no_leaks_of(cluster, after)
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    reply, _ = await run(kc, "y")
    assert reply["content"]["ename"] == "NameError", reply["content"]
    last = await trace(cluster, km, kc)
    await stop(km, kc)
    assert_no_leaks(cluster, before + after + last)


def assert_no_leaks_of(cluster: Cluster, traces: list[KernelTrace]) -> None:
    """Nothing of these kernels is left, while others (the restarted one) may run."""
    import docker

    everything = docker.from_env().api.containers(all=True)
    gone_names = {t.container for t in traces}
    left = [c["Names"] for c in everything
            if any(c["Id"].startswith(n) or (c.get("Labels") or {}).get("ai.backend.kernel") == n for n in gone_names)]
    assert not left, f"containers of replaced kernels left: {left}"
    rows = {r["name"] for r in cluster.kernel_rows()}
    assert not rows & gone_names, rows
    # Ports held by running containers other than this cluster's live kernels (the restarted
    # kernel or a pool refill may reuse a freed port; an exited container holds none).
    agent_ids = {a["id"] for a in cluster.api("GET", "agents").json()["agents"]}
    published = {int(p["PublicPort"]) for c in everything
                 if c["State"] == "running" and (c.get("Labels") or {}).get("ai.backend.agent") not in agent_ids
                 for p in c.get("Ports") or [] if p.get("PublicPort")}
    for t in traces:
        assert not set(t.ports) & published, (t, published)


@pytest.mark.parametrize("now", [False, True], ids=["graceful", "now"])
async def test_shutdown(cluster: Cluster, now: bool) -> None:
    km, kc = await start(cluster)
    traces = await trace(cluster, km, kc)
    assert len(cluster.containers()) == 1  # the check below would see a leak
    await stop(km, kc, now=now)
    assert not await km.is_alive()
    assert_no_leaks(cluster, traces)


async def test_reattach_with_provisioner_info(cluster: Cluster) -> None:
    km1, kc1 = await start(cluster)
    traces = await trace(cluster, km1, kc1)
    assert (await run(kc1, "x = 41\nimport os; pid = os.getpid()"))[0]["content"]["status"] == "ok"
    info = await km1.provisioner.get_provisioner_info()  # type: ignore[union-attr]
    kernel_id = km1.kernel_id
    # The server goes away: its client and manager objects are dropped, the kernel keeps running.
    kc1.stop_channels()
    del km1, kc1

    km2 = AsyncKernelManager(kernel_name=KERNEL, kernel_id=kernel_id)
    _started.append(km2)
    km2.provisioner = KernelProvisionerFactory.instance(parent=km2).create_provisioner_instance(
        kernel_id, km2.kernel_spec, parent=km2)
    await km2.provisioner.load_provisioner_info(info)
    km2.load_connection_info(km2.provisioner.connection_info)
    assert await km2.is_alive()
    kc2 = km2.client()
    kc2.start_channels()
    await kc2.wait_for_ready(timeout=30)
    assert await value(kc2, "x + 1") == "42"
    assert await value(kc2, "os.getpid() == pid") == "True"
    assert (await trace(cluster, km2, kc2))[0] == traces[0]
    # The re-attached manager owns it fully: interrupt and shutdown work through it.
    msg_id = kc2.execute(SLEEP)
    await started(kc2, msg_id)
    await km2.interrupt_kernel()
    await interrupted(kc2, msg_id, timeout=2)
    await stop(km2, kc2)
    assert_no_leaks(cluster, traces)


async def test_a_shutdown_through_one_server_is_no_crash_to_another(cluster: Cluster) -> None:
    """Two servers serve one kernel (two gateways). A graceful shutdown through one must read as
    a deletion to the other, never as an exit: its restarter would take that for a crash and
    start a new kernel nobody asked for."""
    km1, kc1 = await start(cluster)
    traces = await trace(cluster, km1, kc1)
    km2 = AsyncKernelManager(kernel_name=KERNEL, kernel_id=km1.kernel_id)
    km2.provisioner = KernelProvisionerFactory.instance(parent=km2).create_provisioner_instance(
        km1.kernel_id, km2.kernel_spec, parent=km2)
    await km2.provisioner.load_provisioner_info(await km1.provisioner.get_provisioner_info())  # type: ignore[union-attr]
    assert await km2.is_alive()

    async def watch() -> int:
        while (code := await km2.provisioner.poll()) is None:  # type: ignore[union-attr]
            await asyncio.sleep(0.02)
        return code

    watcher = asyncio.ensure_future(watch())
    await stop(km1, kc1)  # shutdown_request, then what jupyter_client does after it
    await asyncio.wait_for(watcher, 30)
    assert km2.provisioner.deleted_elsewhere  # type: ignore[union-attr]
    assert_no_leaks(cluster, traces)
