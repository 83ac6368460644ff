# SPDX-License-Identifier: LGPL-3.0-or-later
"""Kernels outlive the manager and their agent's process; a dead agent is noticed in time.

Every test runs its own multi-process cluster (`manager` + `agent` processes, or `up`), on
real Docker, and breaks it on purpose: SIGTERM and restart the manager, SIGTERM and restart an
agent, SIGKILL one of two agents.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from jupyter_client.manager import KernelManager

from conftest import (
    IMAGE,
    Cluster,
    agent_id_of,
    json_of,
    restart_process,
    start_cluster,
    start_split_cluster,
    teardown_cluster,
    wait_until,
)

LOST_WITHIN = 15.0  # the requirement: a dead agent's kernels are LOST within 15 s


@pytest.fixture
def use_cluster(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the provisioner (BACKENDAI_URL/TOKEN) at a cluster for this test only."""

    def point(c: Cluster) -> Cluster:
        monkeypatch.setenv("BACKENDAI_URL", c.url)
        monkeypatch.setenv("BACKENDAI_TOKEN", c.token)
        return c

    return point


@pytest.fixture
def split1(tmp_path: Path, docker_engine: None, jupyter_dirs: dict[str, str]) -> Iterator[Cluster]:
    c = start_split_cluster(tmp_path, 1)
    yield c
    teardown_cluster(c)


def run(kc: Any, code: str, timeout: float = 60) -> str:
    """Execute ``code`` and return its stdout; fail on an error reply."""
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])

    reply = kc.execute_interactive(code, timeout=timeout, output_hook=hook)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out)


def start_kernel() -> tuple[KernelManager, Any]:
    km = KernelManager(kernel_name="backendai-python")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    return km, kc


def kernel_status(c: Cluster, kid: str) -> str:
    return json_of(c.api("GET", f"kernels/{kid}"))["status"]


def listed(c: Cluster) -> dict[str, dict[str, Any]]:
    return {k["id"]: k for k in json_of(c.api("GET", "kernels"))["kernels"]}


def container_of(c: Cluster, kid: str) -> Any:
    # The store is written through just after the in-memory state the API answers from.
    row = wait_until(lambda: next((r for r in c.kernel_rows() if r["id"] == kid and r["name"]), None), 10,
                     what=f"kernel {kid}'s row to name its container")
    found = [x for x in c.containers() if x.labels.get("ai.backend.kernel") == row["name"]]
    assert len(found) == 1, f"kernel {kid} ({row['name']}) has containers {found}"
    return found[0]


def agent_status(c: Cluster, agent_id: str) -> str | None:
    for a in json_of(c.api("GET", "agents"))["agents"]:
        if a["id"] == agent_id:
            return a["status"]
    return None


def registered(c: Cluster, agent_id: str) -> bool:
    try:
        return any(a["id"] == agent_id and a["status"] == "ALIVE" and a["registered"]
                   for a in json_of(c.api("GET", "agents"))["agents"])
    except Exception:
        return False


def registrations(c: Cluster, proc: str) -> int:
    """How often the agent in process ``proc`` has registered (its log says so each time)."""
    return c.log(proc).count(" registered with ")


# ----- (a) the manager restarts under a running kernel -----------------------------------

def test_kernel_survives_manager_restart(split1: Cluster, use_cluster: Any) -> None:
    c = use_cluster(split1)
    agent = agent_id_of(c, "agent0")
    km, kc = start_kernel()
    try:
        kid = km.provisioner._remote_id
        assert listed(c)[kid]["status"] == "RUNNING"
        run(kc, "state = 41")

        c.stop("manager")  # SIGTERM
        # While the manager is down the kernel keeps serving its client, and the provisioner
        # (which can only ask the manager) does not call it dead.
        assert run(kc, "state += 1; print(state)").strip() == "42"
        for _ in range(3):
            km.provisioner._polled_at = 0.0  # no cached answer: really ask
            assert km.is_alive(), "poll reported the kernel dead while the manager was away"
            time.sleep(0.3)

        restart_process(c, "manager")
        wait_until(lambda: registered(c, agent), 30, what=f"agent {agent} re-registering")
        k = listed(c)[kid]
        assert k["status"] == "RUNNING" and k["agent"] == agent, k
        assert run(kc, "state += 1; print(state)").strip() == "43"

        # Through the whole grace period after the restart nothing marks it LOST.
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            assert kernel_status(c, kid) == "RUNNING"
            km.provisioner._polled_at = 0.0
            assert km.is_alive()
            time.sleep(0.5)
        assert run(kc, "print(state * 2)").strip() == "86"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    wait_until(lambda: not c.containers(), 30, what="the kernel's container to go")
    assert c.kernel_rows() == []


# ----- (b) the agent restarts under a running kernel -------------------------------------

def _agent_restart(c: Cluster, proc: str, agent: str) -> None:
    km, kc = start_kernel()
    deleted = False
    try:
        kid = km.provisioner._remote_id
        run(kc, "import os; state = {'n': 7}")
        pid_before = run(kc, "print(os.getpid())").strip()
        cont = container_of(c, kid)

        before = registrations(c, proc)
        c.stop(proc)  # SIGTERM: the agent leaves its kernels running
        assert run(kc, "state['n'] += 1; print(state['n'])").strip() == "8"
        restart_process(c, proc)
        wait_until(lambda: registrations(c, proc) > before, 60, what=f"agent {agent} registering again")
        wait_until(lambda: registered(c, agent), 30, what=f"agent {agent} ALIVE")
        wait_until(lambda: kernel_status(c, kid) == "RUNNING", 15, what="the kernel listed RUNNING again")

        again = container_of(c, kid)
        assert again.id == cont.id, "the container was replaced instead of re-adopted"
        again.reload()
        assert again.status == "running"
        k = listed(c)[kid]
        assert k["status"] == "RUNNING" and k["agent"] == agent
        assert run(kc, "state['n'] += 1; print(state['n'], os.getpid())").split() == ["9", pid_before]

        # The re-adopted kernel is fully managed: DELETE removes its container.
        r = c.api("DELETE", f"kernels/{kid}")
        assert r.status_code == 204, r.text
        deleted = True
        assert c.api("GET", f"kernels/{kid}").status_code == 404
        import docker.errors

        def gone() -> bool:
            try:
                again.reload()
                return False
            except docker.errors.NotFound:
                return True

        wait_until(gone, 30, what="the container to be removed")
        assert c.containers() == [] and c.kernel_rows() == []
    finally:
        kc.stop_channels()
        if not deleted:
            km.shutdown_kernel(now=True)
        else:
            km.cleanup_resources()


def test_kernel_survives_agent_restart(split1: Cluster, use_cluster: Any) -> None:
    c = use_cluster(split1)
    _agent_restart(c, "agent0", agent_id_of(c, "agent0"))


def test_kernel_survives_up_restart(tmp_path: Path, docker_engine: None, jupyter_dirs: dict[str, str],
                                    use_cluster: Any) -> None:
    """The embedded case: `up` (manager and agent in one process) stops and starts again."""
    c = use_cluster(start_cluster(tmp_path, port_range="32000-32999"))
    try:
        agent = c.wait_agents(1)[0]["id"]
        _agent_restart(c, "up", agent)
    finally:
        teardown_cluster(c)


def test_kernel_deleted_while_agent_away_is_destroyed_not_pooled(split1: Cluster) -> None:
    """A user's kernel the manager forgot while its agent was down must not come back as a
    warm kernel for the next user (it still holds the first user's state)."""
    c = split1
    r = c.api("POST", "kernels", json={"image": IMAGE})
    assert r.status_code == 201, r.text
    kid = json_of(r)["id"]
    cont = container_of(c, kid)
    before = registrations(c, "agent0")
    c.stop("agent0")
    assert c.api("DELETE", f"kernels/{kid}").status_code == 204
    assert c.kernel_rows() == []
    restart_process(c, "agent0")
    wait_until(lambda: registrations(c, "agent0") > before, 60, what="the agent registering again")

    def gone() -> bool:
        return cont.id not in {x.id for x in c.containers(include_pool=True)}

    wait_until(gone, 30, what="the deleted kernel's container to be destroyed")
    # A new kernel gets a fresh container, not the old one out of the pool.
    r = c.api("POST", "kernels", json={"image": IMAGE})
    assert r.status_code == 201, r.text
    assert container_of(c, json_of(r)["id"]).id != cont.id


# ----- (c) two agents, one dies ----------------------------------------------------------

@pytest.fixture
def split2(tmp_path: Path, docker_engine: None, jupyter_dirs: dict[str, str]) -> Iterator[Cluster]:
    c = start_split_cluster(tmp_path, 2, manager_extra=["--Manager.strategy=dispersed"])
    yield c
    teardown_cluster(c)


def create(c: Cluster) -> dict[str, Any]:
    r = c.api("POST", "kernels", json={"image": IMAGE, "resources": {"cpu": 1, "mem": "512m"}})
    assert r.status_code == 201, r.text
    k = json_of(r)
    assert k["status"] == "RUNNING", k
    return k


def test_agent_death_is_noticed(split2: Cluster) -> None:
    c = split2
    a0, a1 = agent_id_of(c, "agent0"), agent_id_of(c, "agent1")
    first, second = create(c), create(c)
    placed = {first["agent"], second["agent"]}
    assert placed == {a0, a1}, f"dispersed placement put both kernels on {placed}"
    by_agent = {k["agent"]: k for k in (first, second)}
    doomed, survivor = by_agent[a0], by_agent[a1]

    c.stop("agent0", sig=signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: kernel_status(c, doomed["id"]) == "LOST", LOST_WITHIN + 1, 0.1,
               what="the dead agent's kernel LOST")
    took = time.monotonic() - killed
    assert took <= LOST_WITHIN, f"LOST after {took:.1f} s"
    assert agent_status(c, a0) == "LOST"
    lost = json_of(c.api("GET", f"kernels/{doomed['id']}"))
    assert lost["exit_code"] is not None
    assert kernel_status(c, survivor["id"]) == "RUNNING"
    assert agent_status(c, a1) == "ALIVE"

    # Only the live agent counts: a dispersed placement would pick the (now idle) dead one
    # if its capacity still counted.
    third = create(c)
    assert third["agent"] == a1
    agents = {a["id"]: a for a in json_of(c.api("GET", "agents"))["agents"]}
    assert agents[a1]["used"]["cpu"] == 2
    assert agents[a0]["used"]["cpu"] == 0

    live_names = {r["name"] for r in c.kernel_rows() if r["id"] in (survivor["id"], third["id"])}
    assert len(live_names) == 2
    for k in (doomed, survivor, third):
        assert c.api("DELETE", f"kernels/{k['id']}").status_code == 204
    assert c.kernel_rows() == []
    # The live agent frees its containers; the dead agent's are teardown's to remove.
    wait_until(lambda: not [x for x in c.containers(include_pool=True)
                            if x.labels.get("ai.backend.kernel") in live_names],
               30, what="the live agent's kernel containers to go")
