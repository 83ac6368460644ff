"""Stock jupyter_server as a gateway client: `jupyter server --gateway-url=<our gateway>`.

- nbclient through jupyter_server's GatewayKernelManager (what papermill does against a gateway),
  whose GatewayKernelClient opens its websocket without credentials: the token rides in the
  gateway URL's path (``/backendai-token/<token>``).
- a notebook executed cell by cell through that server's own REST and websocket API, which
  relays every message to our gateway over the legacy protocol.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import nbformat
import pytest
import requests

from conftest import BIN, Cluster, assert_no_leaks, wait_until
from gateway_support import Gateway, KernelSocket, free_port, new_user, result_of, stdout_of

pytestmark = pytest.mark.docker

NOTEBOOK_CELLS = [
    "import os, platform\nnumbers = [n * n for n in range(10)]",
    "print('sum', sum(numbers))",
    "os.getuid(), platform.python_version().split('.')[0]",
]

GATEWAY_CLIENT = """
import json, sys
import nbformat
from nbclient import NotebookClient
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import GatewayKernelManager

GatewayClient.instance(url=sys.argv[1])
nb = nbformat.read(sys.argv[2], as_version=4)
# As papermill does it: nbclient owns the kernel manager, so it shuts the kernel down at the end.
NotebookClient(nb, kernel_manager_class=GatewayKernelManager, kernel_name="backendai-python", timeout=120).execute()
print(json.dumps([c.get("outputs", []) for c in nb.cells]))
"""


@pytest.fixture(scope="module")
def gw(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    g = Gateway(cluster, tmp_path_factory.mktemp("gateway-server")).start()
    yield g
    g.stop()


def notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "backendai-python", "display_name": "Python 3 (Backend.AI)", "language": "python"}
    nbformat.write(nb, path)
    return path


def check_outputs(outputs: list[list[dict]]) -> None:
    assert outputs[0] == []
    assert outputs[1][0]["text"] == "sum 285\n"
    assert outputs[2][0]["data"]["text/plain"] == "(1000, '3')"  # uid 1000 in the container, Python 3


def test_nbclient_through_gateway_kernel_manager(gw: Gateway, cluster: Cluster, tmp_path: Path) -> None:
    _, token = new_user(cluster, "papermill")
    try:
        proc = subprocess.run([sys.executable, "-c", GATEWAY_CLIENT, f"{gw.url}/backendai-token/{token}",
                               str(notebook(tmp_path / "job.ipynb"))], capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"nbclient hung; its log:\n{(e.stderr or b'')[-3000:]!r}") from None
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_outputs(json.loads(proc.stdout.strip().splitlines()[-1]))
    # nbclient shut its kernel down at the end of execute(): nothing is left.
    assert_no_leaks(cluster, wait=60)
    wait_until(lambda: gw.api("GET", "api/kernels", token).json() == [], 30, what="the gateway's list to empty")


def test_notebook_through_jupyter_server_gateway_url(gw: Gateway, cluster: Cluster, tmp_path: Path) -> None:
    _, token = new_user(cluster, "lab")
    port, server_token = free_port(), "server-token-for-this-test"
    log = open(tmp_path / "server.log", "ab")
    server = subprocess.Popen(
        [str(BIN / "jupyter"), "server", f"--port={port}", "--ip=127.0.0.1", "--no-browser", "--allow-root",
         f"--ServerApp.root_dir={tmp_path}", f"--IdentityProvider.token={server_token}",
         f"--gateway-url={gw.url}/backendai-token/{token}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"token {server_token}"}
    try:
        wait_until(lambda: _answers(f"{base}/api"), 60, what="jupyter server to answer")
        specs = requests.get(f"{base}/api/kernelspecs", headers=auth, timeout=60).json()
        assert "backendai-python" in specs["kernelspecs"], specs
        r = requests.post(f"{base}/api/sessions", headers=auth, timeout=180, json={
            "path": "job.ipynb", "type": "notebook", "name": "job.ipynb", "kernel": {"name": "backendai-python"}})
        assert r.status_code == 201, r.text
        session = r.json()
        kid = session["kernel"]["id"]
        # The same kernel id is the gateway's (and the user's), not a local one.
        assert [k["id"] for k in gw.api("GET", "api/kernels", token).json()] == [kid]
        relay = Gateway(cluster, tmp_path, port=port)  # the server's websocket, as a browser reaches it
        # jupyter_server relays in the legacy JSON protocol only (it offers no v1 subprotocol).
        ks = KernelSocket(relay, kid, server_token, protocol="")
        outputs = []
        for src in NOTEBOOK_CELLS:
            reply, out = ks.execute(src)
            assert reply["content"]["status"] == "ok", reply["content"]
            outputs.append([{"text": stdout_of(out)}] if stdout_of(out) else
                           [{"data": {"text/plain": result_of(out)}}] if result_of(out) else [])
        ks.close()
        check_outputs(outputs)
        assert requests.delete(f"{base}/api/sessions/{session['id']}", headers=auth, timeout=60).status_code == 204
    finally:
        server.terminate()
        server.wait(30)
    assert_no_leaks(cluster, wait=60)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        time.sleep(0.2)
        return False
