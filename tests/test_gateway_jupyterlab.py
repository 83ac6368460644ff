# SPDX-License-Identifier: LGPL-3.0-or-later
"""JupyterLab, pointed at the gateway with ``--gateway-url``, in a real headless Chromium.

Debian's chromium (installed by scripts/setup-js.sh) is driven by playwright-core from
tests/js/jupyterlab_ui.mjs: it opens a new notebook, picks "Python 3 (Backend.AI)" in the kernel
dialog, runs a cell and reads its output, saves a screenshot, then shuts the kernel down from
the Kernel menu. Meanwhile the test checks that the kernel is one the manager runs for the
user, in a Backend.AI container, and afterwards that nothing is left behind.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from conftest import BIN, Cluster, assert_no_leaks, free_port, wait_until
from gateway_support import Gateway, new_user
from js_support import JS, node_or_fail

pytestmark = pytest.mark.docker

CHROMIUM = "/usr/bin/chromium"
CODE = ("import os, socket\n"
        "print('ran on Backend.AI:', os.getuid(), os.path.exists('/.dockerenv'), 6 * 7)")
EXPECTED = "ran on Backend.AI: 1000 True 42"


@pytest.fixture
def gw(cluster: Cluster, tmp_path: Path) -> Iterator[Gateway]:
    g = Gateway(cluster, tmp_path / "gateway").start()
    yield g
    g.stop()


class Lab:
    """`jupyter lab --gateway-url=<gateway>/backendai-token/<user token>` on a free port."""

    def __init__(self, gw: Gateway, user_token: str, work: Path) -> None:
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        root = work / "lab-root"
        for d in (root, work / "lab-settings", work / "lab-workspaces"):
            d.mkdir(parents=True, exist_ok=True)
        self.log_path = work / "jupyterlab.log"
        self.proc = subprocess.Popen(
            [str(BIN / "jupyter-lab"), f"--gateway-url={gw.url}/backendai-token/{user_token}",
             # jupyter_server lowercases the gateway URL when it derives the websocket URL from
             # it, token included; given explicitly, the websocket URL is kept as it is.
             f"--GatewayClient.ws_url={gw.ws_url}/backendai-token/{user_token}",
             "--no-browser", f"--ServerApp.token={self.token}", "--ip=127.0.0.1", f"--port={self.port}",
             "--allow-root", f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={work / 'lab-settings'}",
             f"--LabApp.workspaces_dir={work / 'lab-workspaces'}", "--GatewayClient.request_timeout=120",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"jupyter lab exited {self.proc.returncode}:\n{self.log()}")
            try:
                if self.api("GET", "api/status").status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise AssertionError(f"jupyter lab did not answer within 60 s:\n{self.log()}")

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        return requests.request(method, f"{self.url}/{path}", headers={"Authorization": f"token {self.token}"},
                                timeout=60, **kw)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_jupyterlab_in_chromium_runs_a_cell_on_backendai(gw: Gateway, cluster: Cluster, tmp_path: Path) -> None:
    node = node_or_fail()
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no {CHROMIUM}: run scripts/setup.sh as root (it installs Debian's chromium)")
    name, token = new_user(cluster, "lab")
    lab = Lab(gw, token, tmp_path)
    ui_err = tmp_path / "jupyterlab_ui.stderr"
    t0 = time.monotonic()
    ui = subprocess.Popen([node, str(JS / "jupyterlab_ui.mjs"), lab.url, lab.token, str(tmp_path), CODE, EXPECTED],
                          cwd=JS, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(ui_err, "wb"), text=True)

    def context() -> str:
        return (f"\n--- browser driver ---\n{ui_err.read_text(errors='replace')[-3000:]}"
                f"\n--- jupyter lab ---\n{lab.log()}\n--- gateway ---\n{cluster.log(gw.name)[-3000:]}")

    def next_event() -> dict[str, Any]:
        line = ui.stdout.readline()  # type: ignore[union-attr]
        if not line:
            ui.wait(30)
            raise AssertionError(f"browser driver exited {ui.returncode} (screenshots in {tmp_path}){context()}")
        return json.loads(line)

    try:
        ev = next_event()
        assert ev["event"] == "output", ev
        print("screenshot:", ev["screenshot"], f"(kernel idle after {ev['kernelReadyMs']} ms)")
        assert Path(ev["screenshot"]).read_bytes().startswith(b"\x89PNG")
        assert EXPECTED in ev["text"], ev
        assert "os.getuid()" in ev["cellInput"], ev

        # The notebook's kernel is the gateway's, which is the manager's kernel for this user.
        lab_kernels = [k["id"] for k in lab.api("GET", "api/kernels").json()]
        assert len(lab_kernels) == 1, lab_kernels
        kid = lab_kernels[0]
        assert [k["id"] for k in gw.api("GET", "api/kernels", token).json()] == [kid]
        remote = [k for k in cluster.api("GET", "kernels", params={"all": "1"}).json()["kernels"]
                  if k["tags"].get("jupyter.kernel_id") == kid]
        assert len(remote) == 1 and remote[0]["owner"] == name and remote[0]["tags"]["origin"] == "gateway", remote

        ui.stdin.write("go\n")  # type: ignore[union-attr]
        ui.stdin.flush()  # type: ignore[union-attr]
        done = next_event()
        assert done["event"] == "done", done
        assert ui.wait(30) == 0, context()
        print(f"JupyterLab UI run: {time.monotonic() - t0:.1f} s", file=sys.stderr)

        # Shut down from the Kernel menu: gone from JupyterLab, the gateway and the manager.
        assert lab.api("GET", "api/kernels").json() == []
        assert gw.api("GET", "api/kernels", token).json() == []
        assert_no_leaks(cluster, wait=60)
    finally:
        if ui.poll() is None:
            ui.kill()
            ui.wait()
        lab.stop()
        # Whatever went wrong above, leave no kernel of this user behind for later tests.
        for k in gw.api("GET", "api/kernels", token).json():
            gw.api("DELETE", f"api/kernels/{k['id']}", token)
