"""`jupyter backendai gateway`: Jupyter Server REST and websockets in front of Backend.AI, per user.

Each test talks to a real gateway process (the CLI) over HTTP and websockets, whose kernels run
in Docker on the session cluster; nothing is left behind afterwards.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from conftest import Cluster, assert_no_leaks, wait_until
from gateway_support import COMM_ECHO, V1, Gateway, KernelSocket, new_user, result_of, stdout_of

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def gw(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    g = Gateway(cluster, tmp_path_factory.mktemp("gateway")).start()
    yield g
    g.stop()


@pytest.fixture(scope="module")
def alice(cluster: Cluster) -> tuple[str, str]:
    return new_user(cluster, "alice")


@pytest.fixture(scope="module")
def bob(cluster: Cluster) -> tuple[str, str]:
    return new_user(cluster, "bob")


@pytest.fixture
def no_leaks(cluster: Cluster) -> Iterator[None]:
    yield
    # Kernels a test started and shut down are gone from the gateway, the manager and Docker.
    assert_no_leaks(cluster, wait=60)


def start_kernel(gw: Gateway, token: str, name: str = "backendai-python", **body: object) -> dict:
    r = gw.api("POST", "api/kernels", token, json={"name": name, **body})
    assert r.status_code == 201, r.text
    return r.json()


def shutdown(gw: Gateway, token: str, kid: str) -> None:
    assert gw.api("DELETE", f"api/kernels/{kid}", token).status_code == 204


# ----- REST -------------------------------------------------------------------------------

def test_kernelspecs_are_the_manager_catalog(gw: Gateway, alice: tuple[str, str]) -> None:
    r = gw.api("GET", "api/kernelspecs", alice[1])
    assert r.status_code == 200, r.text
    specs = r.json()
    assert specs["default"] == "backendai-python"
    py = specs["kernelspecs"]["backendai-python"]
    assert py["spec"]["display_name"] == "Python 3 (Backend.AI)"
    assert py["spec"]["metadata"]["kernel_provisioner"]["provisioner_name"] == "backendai-provisioner"
    # logos are served (JupyterLab's launcher shows them)
    logo = py["resources"]["logo-64x64"]
    got = gw.api("GET", logo, alice[1])
    assert got.status_code == 200 and got.content.startswith(b"\x89PNG"), (logo, got.status_code)


def test_requests_without_a_valid_token_are_refused(gw: Gateway) -> None:
    assert gw.api("GET", "api/kernels", None).status_code == 403
    assert gw.api("GET", "api/kernels", "not-a-token").status_code == 403
    assert gw.api("POST", "api/kernels", "not-a-token", json={"name": "backendai-python"}).status_code == 403


def test_tree_answers_for_vscode(gw: Gateway, alice: tuple[str, str]) -> None:
    r = gw.api("GET", f"tree?token={alice[1]}", None)
    assert r.status_code == 200 and "Backend.AI" in r.text


def test_kernel_lifecycle_over_rest_and_v1_websocket(gw: Gateway, cluster: Cluster, alice: tuple[str, str],
                                                      no_leaks: None) -> None:
    name, token = alice
    k = start_kernel(gw, token)
    kid = k["id"]
    assert len(kid) == 36 and kid.count("-") == 4
    listed = gw.api("GET", "api/kernels", token).json()
    assert [x["id"] for x in listed] == [kid]
    # last_activity in the format jupyter_server's GatewayKernelManager parses
    time.strptime(listed[0]["last_activity"], "%Y-%m-%dT%H:%M:%S.%fZ")
    # The manager runs it for alice, tagged with this Jupyter kernel id.
    remote = [x for x in cluster.api("GET", "kernels", params={"all": "1"}).json()["kernels"]
              if x["tags"].get("jupyter.kernel_id") == kid]
    assert len(remote) == 1 and remote[0]["owner"] == name and remote[0]["tags"]["origin"] == "gateway"

    ks = KernelSocket(gw, kid, token, protocol=V1)
    assert ks.negotiated == V1
    reply, out = ks.execute("x = 6 * 7\nprint('hello from', 'backend.ai')\nx")
    assert reply["content"]["status"] == "ok", reply["content"]
    assert stdout_of(out) == "hello from backend.ai\n" and result_of(out) == "42"
    ks.close()
    # restart over REST: the same id answers, with a fresh namespace
    r = gw.api("POST", f"api/kernels/{kid}/restart", token)
    assert r.status_code == 200, r.text
    ks = KernelSocket(gw, kid, token)
    reply, out = ks.execute("'x' in dir()")
    assert result_of(out) == "False", out
    ks.close()
    shutdown(gw, token, kid)
    assert gw.api("GET", "api/kernels", token).json() == []


def test_legacy_json_websocket(gw: Gateway, alice: tuple[str, str], no_leaks: None) -> None:
    """The protocol `jupyter server --gateway-url` speaks: no subprotocol, JSON text frames."""
    token = alice[1]
    kid = start_kernel(gw, token)["id"]
    ks = KernelSocket(gw, kid, token, protocol="")
    assert not ks.negotiated
    reply, out = ks.execute("sum(range(10))")
    assert reply["content"]["status"] == "ok" and result_of(out) == "45"
    ks.close()
    shutdown(gw, token, kid)




def test_input_over_the_websocket(gw: Gateway, alice: tuple[str, str], no_leaks: None) -> None:
    """input() reaches the websocket's client as an input_request and its answer gets back (the
    kernel sends it to the shell request's ZMQ identity, which the connection's stdin shares)."""
    token = alice[1]
    kid = start_kernel(gw, token)["id"]
    ks = KernelSocket(gw, kid, token)
    msg_id = ks.execute_request("name = input('name? ')\nprint('hi', name)", allow_stdin=True)
    while (m := ks.recv(60))["channel"] != "stdin":
        pass
    assert m["msg_type"] == "input_request" and m["content"]["prompt"] == "name? ", m
    ks.send("stdin", "input_reply", {"value": "Ada"})
    reply, out = ks.outputs(msg_id)
    assert reply["content"]["status"] == "ok" and stdout_of(out) == "hi Ada\n", (reply["content"], out)
    ks.close()
    shutdown(gw, token, kid)


def test_binary_buffers_round_trip_byte_exact(gw: Gateway, alice: tuple[str, str], no_leaks: None) -> None:
    token = alice[1]
    kid = start_kernel(gw, token)["id"]
    ks = KernelSocket(gw, kid, token, protocol=V1)
    assert ks.execute(COMM_ECHO)[0]["content"]["status"] == "ok"
    payload = bytes(range(256)) * 64 + b"\x00\xff"
    ks.send("shell", "comm_open", {"comm_id": "c1", "target_name": "echo", "data": {}})
    ks.send("shell", "comm_msg", {"comm_id": "c1", "data": {}}, buffers=[payload])
    deadline = time.monotonic() + 30
    while True:
        m = ks.recv(max(0.1, deadline - time.monotonic()))
        if m["msg_type"] == "comm_msg" and m["content"].get("comm_id") == "c1":
            break
    assert m["content"]["data"] == {"n": 1}
    assert m["buffers"] == [payload[::-1]]
    ks.close()
    shutdown(gw, token, kid)


# ----- sessions ---------------------------------------------------------------------------

def test_sessions_crud(gw: Gateway, alice: tuple[str, str], bob: tuple[str, str], no_leaks: None) -> None:
    token = alice[1]
    r = gw.api("POST", "api/sessions", token,
               json={"path": "work/a.ipynb", "name": "a.ipynb", "type": "notebook", "kernel": {"name": "backendai-python"}})
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["kernel"]["name"] == "backendai-python"
    assert [x["id"] for x in gw.api("GET", "api/sessions", token).json()] == [s["id"]]
    assert gw.api("GET", "api/sessions", bob[1]).json() == []
    assert gw.api("GET", f"api/sessions/{s['id']}", bob[1]).status_code == 404
    assert gw.api("PATCH", f"api/sessions/{s['id']}", bob[1], json={"path": "x.ipynb"}).status_code == 404
    r = gw.api("PATCH", f"api/sessions/{s['id']}", token, json={"path": "work/b.ipynb"})
    assert r.status_code == 200 and r.json()["path"] == "work/b.ipynb"
    assert gw.api("DELETE", f"api/sessions/{s['id']}", bob[1]).status_code == 404
    assert gw.api("DELETE", f"api/sessions/{s['id']}", token).status_code == 204
    assert gw.api("GET", "api/sessions", token).json() == []
    assert gw.api("GET", "api/kernels", token).json() == []


# ----- two users --------------------------------------------------------------------------

def test_users_see_only_their_own_kernels(gw: Gateway, alice: tuple[str, str], bob: tuple[str, str],
                                          no_leaks: None) -> None:
    a = start_kernel(gw, alice[1])["id"]
    b = start_kernel(gw, bob[1])["id"]
    assert [k["id"] for k in gw.api("GET", "api/kernels", alice[1]).json()] == [a]
    assert [k["id"] for k in gw.api("GET", "api/kernels", bob[1]).json()] == [b]
    for method, path in (("GET", f"api/kernels/{a}"), ("DELETE", f"api/kernels/{a}"),
                         ("POST", f"api/kernels/{a}/interrupt"), ("POST", f"api/kernels/{a}/restart")):
        r = gw.api(method, path, bob[1])
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    import websocket

    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        KernelSocket(gw, a, bob[1])
    assert e.value.status_code == 404
    # alice's kernel still works after bob's attempts
    ks = KernelSocket(gw, a, alice[1])
    assert result_of(ks.execute("1 + 1")[1]) == "2"
    ks.close()
    shutdown(gw, alice[1], a)
    shutdown(gw, bob[1], b)


# ----- restart without loss ---------------------------------------------------------------

def test_gateway_restart_keeps_kernels_and_their_state(cluster: Cluster, tmp_path: Path, alice: tuple[str, str],
                                                       no_leaks: None) -> None:
    token = alice[1]
    g = Gateway(cluster, tmp_path / "gw").start()
    try:
        kid = start_kernel(g, token)["id"]
        ks = KernelSocket(g, kid, token)
        assert ks.execute("state = {'answer': 42}")[0]["content"]["status"] == "ok"
        ks.close()
        g.stop()
        # The kernel outlives its gateway...
        assert any(k["tags"].get("jupyter.kernel_id") == kid and k["status"] == "RUNNING"
                   for k in cluster.api("GET", "kernels", params={"all": "1"}).json()["kernels"])
        g.start()
        # ...and the restarted gateway serves it under the same id, state intact.
        assert [k["id"] for k in g.api("GET", "api/kernels", token).json()] == [kid]
        ks = KernelSocket(g, kid, token)
        assert result_of(ks.execute("state['answer']")[1]) == "42"
        ks.close()
        # A second gateway against the same manager serves the same kernel.
        g2 = Gateway(cluster, tmp_path / "gw2").start()
        try:
            ks = KernelSocket(g2, kid, token)
            assert result_of(ks.execute("state['answer'] + 1")[1]) == "43"
            ks.close()
        finally:
            g2.stop()
        shutdown(g, token, kid)
    finally:
        g.stop()


def test_token_in_path_for_headerless_clients(gw: Gateway, alice: tuple[str, str], no_leaks: None) -> None:
    token = alice[1]
    base = f"backendai-token/{token}"
    r = requests.post(f"{gw.url}/{base}/api/kernels", json={"name": "backendai-python"}, timeout=120)
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    ks = KernelSocket(gw, kid, token, protocol="", via_path_token=True)
    assert result_of(ks.execute("3 * 3")[1]) == "9"
    ks.close()
    assert requests.get(f"{gw.url}/backendai-token/wrong/api/kernels", timeout=30).status_code == 403
    assert requests.delete(f"{gw.url}/{base}/api/kernels/{kid}", timeout=60).status_code == 204


def test_kernel_whose_client_gave_up_waiting_is_shut_down(gw: Gateway, cluster: Cluster, alice: tuple[str, str],
                                                          no_leaks: None) -> None:
    """A start queued behind a full cluster outlives its client's patience (GatewayClient
    gives up after 42 s and asks again); the kernel it finally gets must not be kept for nobody."""
    agent = cluster.wait_agents(1)[0]
    filler = cluster.api("POST", "kernels?wait=60", json={"image": "backendai/kernel-python:3.11", "resources": {"cpu": agent["capacity"]["cpu"]}})
    assert filler.status_code == 201, filler.text
    with pytest.raises(requests.Timeout):
        requests.post(f"{gw.url}/api/kernels", json={"name": "backendai-python"}, timeout=3,
                      headers={"Authorization": f"token {alice[1]}"})
    wait_until(lambda: any(k["status"] == "PENDING" for k in cluster.kernel_rows()), 30, what="the start to queue")
    assert cluster.api("DELETE", f"kernels/{filler.json()['id']}").status_code == 204
    # The queued start now runs on the freed slots, and the gateway hands that kernel back.
    # Gone from the manager first (the gateway's shutdown deletes it there), then from the
    # gateway's own list once that shutdown returns.
    wait_until(lambda: not cluster.kernel_rows(), 120, what="the abandoned kernel to go")
    wait_until(lambda: gw.api("GET", "api/kernels", alice[1]).json() == [], 30,
               what="the gateway to forget the abandoned kernel")


def test_each_user_has_their_own_files(gw: Gateway, alice: tuple[str, str], bob: tuple[str, str]) -> None:
    """/api/contents is per user: one token cannot read, list or overwrite another user's
    notebooks, nor climb out of its own folder."""
    nb = {"type": "notebook", "format": "json", "content": {
        "cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}
    assert gw.api("PUT", "api/contents/secret.ipynb", alice[1], json=nb).status_code == 201
    assert gw.api("POST", "api/contents/secret.ipynb/checkpoints", alice[1]).status_code == 201
    assert [f["name"] for f in gw.api("GET", "api/contents", alice[1]).json()["content"]] == ["secret.ipynb"]
    assert gw.api("GET", "api/contents", bob[1]).json()["content"] == []
    assert gw.api("GET", "api/contents/secret.ipynb", bob[1]).status_code == 404
    for sneaky in (f"api/contents/..%2F{alice[0]}%2Fsecret.ipynb", "api/contents/..%2F..%2Fsessions.db"):
        assert gw.api("GET", sneaky, bob[1]).status_code == 404, sneaky
    # Bob's file of the same name is his own.
    assert gw.api("PUT", "api/contents/secret.ipynb", bob[1], json=nb).status_code == 201
    assert gw.api("DELETE", "api/contents/secret.ipynb", bob[1]).status_code == 204
    assert gw.api("GET", "api/contents/secret.ipynb", alice[1]).status_code == 200
    assert gw.api("DELETE", "api/contents/secret.ipynb", alice[1]).status_code == 204


def test_only_the_gateway_extension_is_served(gw: Gateway, alice: tuple[str, str]) -> None:
    """No JupyterLab UI nor language servers on the gateway host: users bring their own Lab."""
    for path in ("lab", "lsp/status"):
        assert gw.api("GET", path, alice[1]).status_code == 404, path


def test_kernel_env_chooses_resources_and_bad_requests_say_why(gw: Gateway, cluster: Cluster, alice: tuple[str, str],
                                                              no_leaks: None) -> None:
    """KERNEL_CPU/KERNEL_MEM as GatewayClient sends them size the container; an image nobody
    offers or an impossible size is the manager's own status and one line, and leaves nothing."""
    token = alice[1]
    kid = start_kernel(gw, token, env={"KERNEL_CPU": "1.5", "KERNEL_MEM": "768m", "KERNEL_USERNAME": "alice"})["id"]
    remote = [x for x in cluster.api("GET", "kernels", params={"all": "1"}).json()["kernels"]
              if x["tags"].get("jupyter.kernel_id") == kid]
    assert remote[0]["resources"]["cpu"] == 1.5 and remote[0]["resources"]["mem"] == 768 * 2**20
    shutdown(gw, token, kid)
    bad = gw.api("POST", "api/kernels", token, json={"name": "backendai-python", "env": {"KERNEL_IMAGE": "no/such:1"}})
    assert bad.status_code == 404 and "no agent offers image 'no/such:1'" in bad.json()["message"], bad.text
    huge = gw.api("POST", "api/kernels", token, json={"name": "backendai-python", "env": {"KERNEL_CPU": "4096"}})
    assert huge.status_code == 400 and "unschedulable" in huge.json()["message"], huge.text
    assert gw.api("GET", "api/kernels", token).json() == []
