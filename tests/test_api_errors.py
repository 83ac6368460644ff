# SPDX-License-Identifier: LGPL-3.0-or-later
"""Every way a request can be wrong gets a clear 4xx/5xx JSON answer and leaves nothing behind.

The cluster here has no warm pool and exactly five kernel host ports, one kernel's worth: a
failed start that kept a port (or a container) would make the next real start fail, so
"nothing left behind" is checked by what it would break, not only by looking.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from jupyter_client.manager import KernelManager

from conftest import IMAGE, Cluster, json_of, start_cluster, teardown_cluster, wait_until

PORTS = (30995, 30999)  # five ports: one kernel, nothing to spare
BOGUS_IMAGE = "backendai/kernel-nosuchlang:0"


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory, docker_engine: None, jupyter_dirs: dict[str, str]) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("api-errors"), port_range=f"{PORTS[0]}-{PORTS[1]}",
                      extra=["--Agent.pool_sizes={}"])
    yield c
    teardown_cluster(c)


@pytest.fixture
def clean(tight: Cluster) -> Iterator[Cluster]:
    """Each test starts and must end with no kernel, no container and no held port."""
    assert_nothing_left(tight)
    yield tight
    assert_nothing_left(tight)


def held_ports() -> list[int]:
    held = []
    for p in range(PORTS[0], PORTS[1] + 1):
        with socket.socket() as s:
            # As the agent and docker-proxy bind: only a listener counts, not TIME_WAIT leftovers.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                held.append(p)
    return held


def assert_nothing_left(c: Cluster) -> None:
    assert c.kernel_rows() == [], c.kernel_rows()
    assert json_of(c.api("GET", "kernels", params={"all": "1"}))["kernels"] == []
    assert c.containers(include_pool=True) == []
    assert held_ports() == []


def assert_error(r: requests.Response, status: int, code: str) -> str:
    body = json_of(r)
    assert r.status_code == status, (r.status_code, body)
    assert r.headers["Content-Type"].startswith("application/json")
    assert set(body) == {"error", "message"}, body
    assert body["error"] == code, body
    msg = body["message"]
    assert isinstance(msg, str) and msg.strip() and "\n" not in msg and len(msg) < 500, msg
    return msg


def start_real_kernel(c: Cluster) -> dict[str, Any]:
    """A real (cold) start: it needs all five ports, so it proves none were kept."""
    r = c.api("POST", "kernels", json={"image": IMAGE})
    assert r.status_code == 201, r.text
    return json_of(r)


def start_and_delete(c: Cluster) -> None:
    k = start_real_kernel(c)
    assert c.api("DELETE", f"kernels/{k['id']}").status_code == 204
    wait_until(lambda: not c.containers(include_pool=True) and not held_ports(), 30,
               what="the kernel's container and ports to go")


# ----- requests the manager refuses ------------------------------------------------------

def test_unknown_image(clean: Cluster) -> None:
    msg = assert_error(clean.api("POST", "kernels", json={"image": BOGUS_IMAGE}), 404, "unknown_image")
    assert BOGUS_IMAGE in msg and IMAGE in msg  # says what exists instead


@pytest.mark.parametrize("method,path", [("GET", ""), ("DELETE", ""), ("POST", "/interrupt"),
                                         ("POST", "/restart"), ("POST", "/signal")])
def test_unknown_kernel(clean: Cluster, method: str, path: str) -> None:
    kid = "00000000-0000-0000-0000-000000000000"
    msg = assert_error(clean.api(method, f"kernels/{kid}{path}", json={"signal": "SIGINT"} if path == "/signal" else None),
                       404, "unknown_kernel")
    assert kid in msg


def test_unschedulable(clean: Cluster) -> None:
    msg = assert_error(clean.api("POST", "kernels", json={"image": IMAGE, "resources": {"cpu": 1000}}),
                       400, "unschedulable")
    cpus = json_of(clean.api("GET", "agents"))["agents"][0]["capacity"]["cpu"]
    assert "1000" in msg and "largest agent" in msg and f"{cpus:g}" in msg, msg
    msg = assert_error(clean.api("POST", "kernels", json={"image": IMAGE, "resources": {"mem": "1000t"}}),
                       400, "unschedulable")
    assert "mem" in msg and "largest agent" in msg, msg


def test_malformed_json(clean: Cluster) -> None:
    r = clean.api("POST", "kernels", data=b'{"image": "backendai/kernel-python:3.11",',
                  headers={"Content-Type": "application/json"})
    assert_error(r, 400, "bad_json")


@pytest.mark.parametrize("body", [[IMAGE], "backendai/kernel-python:3.11", 42, None])
def test_body_not_an_object(clean: Cluster, body: Any) -> None:
    assert_error(clean.api("POST", "kernels", data=json.dumps(body)), 400, "bad_json")


@pytest.mark.parametrize("tags", [["a"], {"k": 1}, {str(i): "v" for i in range(33)}, {"k": "v" * 600}])
def test_bad_tags(clean: Cluster, tags: Any) -> None:
    assert "tags" in assert_error(clean.api("POST", "kernels", json={"image": IMAGE, "tags": tags}), 400, "bad_request")


def test_tags_are_kept_and_shown(clean: Cluster) -> None:
    r = clean.api("POST", "kernels", json={"image": IMAGE, "tags": {"origin": "test", "jupyter.kernel_id": "x"}})
    assert r.status_code == 201, r.text
    k = json_of(r)
    try:
        assert k["tags"] == {"origin": "test", "jupyter.kernel_id": "x"}
        assert json_of(clean.api("GET", f"kernels/{k['id']}"))["tags"] == k["tags"]
        listed = json_of(clean.api("GET", "kernels"))["kernels"]
        assert [x["tags"] for x in listed if x["id"] == k["id"]] == [k["tags"]]
    finally:
        assert clean.api("DELETE", f"kernels/{k['id']}").status_code == 204


def test_bad_grace_leaves_the_kernel_alone(clean: Cluster) -> None:
    r = clean.api("POST", "kernels", json={"image": IMAGE})
    assert r.status_code == 201, r.text
    k = r.json()
    msg = assert_error(clean.api("DELETE", f"kernels/{k['id']}", params={"grace": "soon"}), 400, "bad_argument")
    assert "grace" in msg and "soon" in msg
    assert json_of(clean.api("GET", f"kernels/{k['id']}"))["status"] == "RUNNING"
    assert clean.api("DELETE", f"kernels/{k['id']}", params={"grace": "2"}).status_code == 204


@pytest.mark.parametrize("resources,word", [({"mem": "lots"}, "lots"), ({"cpu": "many"}, "many"),
                                            ({"cpu": -1}, "-1"), ("2 cores", "")])
def test_bad_resources(clean: Cluster, resources: Any, word: str) -> None:
    msg = assert_error(clean.api("POST", "kernels", json={"image": IMAGE, "resources": resources}),
                       400, "bad_resources")
    assert word in msg


@pytest.mark.parametrize("body", [{}, {"image": 3}, {"image": IMAGE, "argv": []}, {"image": IMAGE, "argv": "python"},
                                  {"image": IMAGE, "env": {"A": 1}}, {"image": IMAGE, "constraints": ["x"]}])
def test_bad_fields(clean: Cluster, body: dict[str, Any]) -> None:
    assert_error(clean.api("POST", "kernels", json=body), 400, "bad_request")


def test_missing_and_wrong_token(clean: Cluster) -> None:
    for method, path in (("GET", "kernels"), ("POST", "kernels"), ("GET", "agents"), ("DELETE", "kernels/x")):
        assert_error(clean.api(method, path, token="", json={"image": IMAGE}), 401, "unauthorized")
        assert_error(clean.api(method, path, token="not-a-token", json={"image": IMAGE}), 401, "unauthorized")
    r = requests.get(f"{clean.url}/api/v1/kernels", headers={"Authorization": "Basic abc"}, timeout=10)
    assert_error(r, 401, "unauthorized")


def test_unknown_endpoint(clean: Cluster) -> None:
    for method, path in (("GET", "nosuch"), ("POST", "kernels/x/y/z"), ("DELETE", "agents/a/b")):
        msg = assert_error(clean.api(method, path, json={}), 404, "not_found")
        assert path in msg
    msg = assert_error(clean.api("POST", "kernels/x/dance", json={}), 404, "unknown_action")
    assert "dance" in msg
    r = requests.get(f"{clean.url}/nothing/here", timeout=10)
    assert_error(r, 404, "not_found")
    # A known endpoint with a method it lacks: 405, still JSON.
    assert_error(clean.api("PUT", "kernels", json={}), 405, "http_error")


def test_other_users_kernel(clean: Cluster) -> None:
    c = clean
    r = c.api("POST", "users", json={"name": "eve"})
    assert r.status_code == 201, r.text
    eve = json_of(r)["token"]
    k = start_real_kernel(c)
    try:
        for method, path in (("GET", ""), ("DELETE", ""), ("POST", "/interrupt"), ("POST", "/restart")):
            assert_error(c.api(method, f"kernels/{k['id']}{path}", token=eve), 404, "unknown_kernel")
        assert json_of(c.api("GET", "kernels", token=eve))["kernels"] == []
        assert json_of(c.api("GET", "kernels", token=eve, params={"all": "1"}))["kernels"] == []
        assert_error(c.api("GET", "users", token=eve), 403, "forbidden")
        assert_error(c.api("POST", "users", token=eve, json={"name": "mallory", "admin": True}), 403, "forbidden")
        assert_error(c.api("POST", "kernels", token=eve, json={"image": IMAGE, "owner": "admin"}), 403, "forbidden")
        # Eve's attempts changed nothing: the kernel is still admin's, and still running.
        again = json_of(c.api("GET", f"kernels/{k['id']}"))
        assert again["status"] == "RUNNING" and again["owner"] == "admin"
    finally:
        assert c.api("DELETE", f"kernels/{k['id']}").status_code == 204
    wait_until(lambda: not c.containers(include_pool=True) and not held_ports(), 30,
               what="the kernel's container and ports to go")


# ----- starts that fail on the agent -----------------------------------------------------

@pytest.mark.parametrize("argv,reasons", [
    (["/nonexistent"], ["code 127", "/nonexistent", "No such file or directory"]),  # nothing to run
    (["/bin/false"], ["exited with code 1"]),                       # starts, then exits before it is ready
    (["/bin/sh", "-c", "echo first; echo 'cannot start: boom' >&2; exit 3"],
     ["exited with code 3", "cannot start: boom"]),                  # its last words are the reason
])
def test_container_fails_to_start(clean: Cluster, argv: list[str], reasons: list[str]) -> None:
    c = clean
    for _ in range(2):  # twice: a start that kept the five ports would make the second "no_ports"
        msg = assert_error(c.api("POST", "kernels", json={"image": IMAGE, "argv": argv}), 500, "start_failed")
        assert all(r in msg for r in reasons), msg
        assert_nothing_left(c)
    # And a real kernel still starts on the same five ports, then goes.
    start_and_delete(c)


def test_failed_start_can_be_asked_about_later(clean: Cluster) -> None:
    """A client that did not wait on the POST (wait=0) and asks later hears why, not just 404."""
    r = clean.api("POST", "kernels", json={"image": IMAGE, "argv": ["/bin/false"]}, params={"wait": "0"})
    assert r.status_code in (201, 202), r.text
    kid = json_of(r)["id"]

    def settled() -> list[requests.Response]:  # (a Response is falsy when it is an error)
        g = clean.api("GET", f"kernels/{kid}")
        return [g] if g.status_code != 200 else []

    msg = assert_error(wait_until(settled, 60, what="the start to fail")[0], 500, "start_failed")
    assert "exited with code 1" in msg
    wait_until(lambda: not held_ports() and not clean.containers(include_pool=True), 30, what="cleanup")


# ----- through the provisioner -----------------------------------------------------------

def test_provisioner_unknown_image(clean: Cluster, jupyter_dirs: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKENDAI_URL", clean.url)
    monkeypatch.setenv("BACKENDAI_TOKEN", clean.token)
    spec_dir = Path(jupyter_dirs["JUPYTER_DATA_DIR"]) / "kernels" / "backendai-nosuchlang"
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": ["/opt/kernel/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Nosuchlang (Backend.AI)", "language": "nosuchlang", "interrupt_mode": "message",
        "metadata": {"kernel_provisioner": {"provisioner_name": "backendai-provisioner",
                                            "config": {"image": BOGUS_IMAGE}}},
    }))
    try:
        km = KernelManager(kernel_name="backendai-nosuchlang")
        with pytest.raises(RuntimeError) as info:
            km.start_kernel()
        text = str(info.value)
        assert "\n" not in text and BOGUS_IMAGE in text and "unknown_image" in text, text
        assert not km.has_kernel
    finally:
        for f in spec_dir.iterdir():
            f.unlink()
        spec_dir.rmdir()


def test_provisioner_failed_start(clean: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernelspec whose argv cannot run: one-line RuntimeError from start_kernel, no leak."""
    monkeypatch.setenv("BACKENDAI_URL", clean.url)
    monkeypatch.setenv("BACKENDAI_TOKEN", clean.token)
    from jupyter_client.kernelspec import KernelSpecManager

    ksm = KernelSpecManager()
    spec = ksm.get_kernel_spec("backendai-python")
    spec.argv = ["/nonexistent", "{connection_file}"]
    km = KernelManager(kernel_name="backendai-python")
    km._kernel_spec = spec
    with pytest.raises(RuntimeError) as info:
        km.start_kernel()
    text = str(info.value)
    assert "\n" not in text and "nonexistent" in text and "start_failed" in text, text
    assert not km.has_kernel
