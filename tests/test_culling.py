# SPDX-License-Identifier: LGPL-3.0-or-later
"""Idle culling: the pure policy, then a real cluster where the agent watches IOPub."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from jupyter_client import BlockingKernelClient

from conftest import Cluster, assert_no_leaks, wait_until
from jupyter_backendai.manager.culling import idle_kernels


def kernel(kid: str, owner: str = "alice", status: str = "RUNNING", last: float | None = 0.0,
           state: str = "idle", **extra: Any) -> dict[str, Any]:
    return {"id": kid, "owner": owner, "status": status, "last_activity": last, "updated": 0.0,
            "execution_state": state, **extra}


def test_policy_culls_only_idle_running_kernels_past_their_owners_timeout() -> None:
    timeouts = {"alice": 60.0, "bob": 0.0}
    ks = [
        kernel("old"),                                 # idle 100 s > 60: culled
        kernel("recent", last=50.0),                   # idle 50 s: kept
        kernel("busy", state="busy"),                  # computing silently: kept
        kernel("bobs", owner="bob"),                   # bob's timeout 0: never
        kernel("pending", status="PENDING"),
        kernel("going", deleting=True),
        kernel("quiet-since-start", last=None),        # no report yet: its start counts
    ]
    assert idle_kernels(ks, timeouts.__getitem__, now=100.0) == [("old", 100.0), ("quiet-since-start", 100.0)]


def test_policy_boundary_is_strictly_past_the_timeout() -> None:
    assert idle_kernels([kernel("k", last=40.0)], lambda _: 60.0, now=100.0) == []
    assert idle_kernels([kernel("k", last=39.0)], lambda _: 60.0, now=100.0) == [("k", 61.0)]


@pytest.mark.docker
def test_idle_kernels_are_culled_by_what_the_agent_sees_on_iopub(cluster: Cluster) -> None:
    """A raw ZeroMQ client (no gateway involved) keeps its kernel alive by using it; a silent
    busy cell is not idleness; once idle past the owner's timeout, the kernel is deleted."""
    name = f"culled-{uuid.uuid4().hex[:6]}"
    r = cluster.api("POST", "users", json={"name": name, "idle_timeout": 4})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    keeper, keeper_token = f"kept-{uuid.uuid4().hex[:6]}", None
    r = cluster.api("POST", "users", json={"name": keeper})   # the default: never culled
    keeper_token = r.json()["token"]
    k = cluster.api("POST", "kernels?wait=120", token, json={"image": "backendai/kernel-python:3.11"}).json()
    kept = cluster.api("POST", "kernels?wait=120", keeper_token, json={"image": "backendai/kernel-python:3.11"}).json()
    kc = BlockingKernelClient()
    kc.load_connection_info({**k["connection"], "key": k["connection"]["key"].encode()})
    kc.start_channels()
    try:
        kc.wait_for_ready(60)
        reply = kc.execute_interactive("import time; time.sleep(8); x = 42", timeout=60)  # busy, silent
        assert reply["content"]["status"] == "ok"
        for _ in range(4):                                           # used every 2 s: alive
            assert kc.execute_interactive("x", timeout=30)["content"]["status"] == "ok"
            time.sleep(2)
        assert cluster.api("GET", f"kernels/{k['id']}", token).status_code == 200
        seen = cluster.api("GET", f"kernels/{k['id']}", token).json()
        assert seen["execution_state"] == "idle" and time.time() - seen["last_activity"] < 4
        # Left alone now: culled a few seconds after the 4 s limit (heartbeats are 1 s here).
        wait_until(lambda: cluster.api("GET", f"kernels/{k['id']}", token).status_code == 404, 30,
                   what="the idle kernel to be culled")
    finally:
        kc.stop_channels()
    assert cluster.api("GET", f"kernels/{kept['id']}", keeper_token).json()["status"] == "RUNNING"
    assert cluster.api("DELETE", f"kernels/{kept['id']}", keeper_token).status_code == 204
    assert_no_leaks(cluster, wait=60)


def test_idle_timeout_policy_api(cluster: Cluster) -> None:
    name = f"policy-{uuid.uuid4().hex[:6]}"
    assert cluster.api("POST", "users", json={"name": name}).status_code == 201
    r = cluster.api("PATCH", f"users/{name}", json={"idle_timeout": 600})
    assert r.status_code == 200 and r.json() == {"name": name, "idle_timeout": 600.0}
    users = {u["name"]: u for u in cluster.api("GET", "users").json()["users"]}
    assert users[name]["idle_timeout"] == 600.0
    bad = cluster.api("PATCH", f"users/{name}", json={"idle_timeout": -1})
    assert bad.status_code == 400 and "idle_timeout" in bad.json()["message"]
    assert cluster.api("PATCH", f"users/{name}", json={"idle": 1}).status_code == 400
    assert cluster.api("PATCH", "users/nobody-here", json={"idle_timeout": 1}).status_code == 404
    user_token = cluster.api("POST", "users", json={"name": f"{name}-2"}).json()["token"]
    assert cluster.api("PATCH", f"users/{name}", user_token, json={"idle_timeout": 0}).status_code == 403
