# SPDX-License-Identifier: LGPL-3.0-or-later
"""The gateway through @jupyterlab/services, the client library of JupyterLab and VS Code's
Jupyter extension: a Node script (tests/js/services_client.mjs, packages pinned in
tests/js/package-lock.json and installed by scripts/setup.sh) runs a session's whole life
against a real gateway whose kernels run in Docker, and prints what it saw as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import Cluster, assert_no_leaks, wait_until
from gateway_support import Gateway, new_user
from js_support import JS, node_or_fail

pytestmark = pytest.mark.docker


@pytest.fixture
def gw(cluster: Cluster, tmp_path: Path) -> Iterator[Gateway]:
    g = Gateway(cluster, tmp_path / "gateway").start()
    yield g
    g.stop()


def test_jupyterlab_services_session_lifecycle(gw: Gateway, cluster: Cluster) -> None:
    node = node_or_fail()
    name, token = new_user(cluster, "jlab")
    t0 = time.monotonic()
    proc = subprocess.run([node, str(JS / "services_client.mjs"), gw.url, token], cwd=JS,
                          capture_output=True, text=True, timeout=170, env={**os.environ, "NO_COLOR": "1"})
    took = time.monotonic() - t0
    print(proc.stderr)
    assert proc.returncode == 0, (
        f"services_client exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\n"
        f"gateway log:\n{cluster.log(gw.name)[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"services client: {took:.1f} s", json.dumps(res, indent=1))

    # Kernelspecs are the manager's catalog, and a new user has no kernels.
    assert res["kernelspecs"]["default"] == "backendai-python"
    assert res["kernelspecs"]["display"]["backendai-python"] == "Python 3 (Backend.AI)"
    assert res["kernelsBefore"] == []

    # The session's kernel is the only one the user sees, and the manager runs it for them.
    s = res["session"]
    kid = s["kernelId"]
    assert s["kernelName"] == "backendai-python" and s["language"] == "python", s
    assert res["kernelsDuring"] == [kid]
    assert res["sessionsDuring"] == [{"id": s["id"], "kernel": kid}]

    # It ran in a Backend.AI container, as the unprivileged kernel user.
    ex = res["execute"]
    assert ex["status"] == "ok" and ex["result"] == "42", ex
    assert ex["stdout"] == "hello from backend.ai 1000 True\n", ex

    # An interrupt ends the sleep long before its 60 s, and the kernel keeps its variables.
    it = res["interrupt"]
    assert it["status"] == "error" and it["error"] == "KeyboardInterrupt", it
    assert "slept through" not in it["stdout"]
    assert it["elapsedMs"] < 30_000, it
    assert res["afterInterrupt"]["result"] == "43", res["afterInterrupt"]

    # Restart keeps the kernel id; a request sent right after it runs in the fresh kernel.
    ar = res["afterRestart"]
    assert ar["kernelId"] == kid
    assert ar["status"] == "ok" and ar["result"] == "(False, 42)", ar

    # Shut down: nothing left, through the gateway, the manager or Docker.
    assert res["kernelsAfter"] == [] and res["sessionsAfter"] == []
    assert not [k for k in cluster.api("GET", "kernels", params={"all": "1"}).json()["kernels"]
                if k["tags"].get("jupyter.kernel_id") == kid]
    assert_no_leaks(cluster, wait=60)
