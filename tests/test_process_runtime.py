# SPDX-License-Identifier: LGPL-3.0-or-later
"""The process runtime: `up` without containers (laptops, Binder, CI without Docker).

Nothing here needs a Docker engine: kernels are host processes, and this module must pass on
a machine where none answers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from conftest import Cluster, json_of, start_cluster, teardown_cluster, wait_until

HANDED_OUT = "handed-out"  # the agent's marker in a kernel dir a user was given


@pytest.fixture
def proc_cluster(tmp_path: Path, jupyter_dirs: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    c = start_cluster(tmp_path, runtime="process", port_range="30800-30899")
    monkeypatch.setenv("BACKENDAI_URL", c.url)
    monkeypatch.setenv("BACKENDAI_TOKEN", c.token)
    yield c
    teardown_cluster(c)


def kernels_dir(c: Cluster) -> Path:
    return c.state_dir / "agent" / "kernels"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def user_kernel_dirs(c: Cluster) -> list[Path]:
    """Kernel dirs beyond the idle warm ones: kernels a user was given."""
    d = kernels_dir(c)
    return [k for k in d.iterdir() if (k / HANDED_OUT).exists()] if d.exists() else []


def test_up_says_process_runtime(proc_cluster: Cluster) -> None:
    c = proc_cluster
    wait_until(lambda: "runtime: process" in c.log("up"), 30, what="up to name its runtime")
    line = next(ln for ln in c.log("up").splitlines() if ln.startswith("runtime: process"))
    # Chosen with --runtime=process: it must not blame a missing Docker engine.
    assert "as configured" in line and "without isolation" in line, line
    agents = json_of(c.api("GET", "agents"))["agents"]
    assert [a["runtime"] for a in agents] == ["process"]
    images = [i["name"] for i in json_of(c.api("GET", "images"))["images"]]
    assert images == ["backendai/kernel-python:3.11"]


def test_notebook_on_process_runtime(proc_cluster: Cluster) -> None:
    c = proc_cluster
    nb = new_notebook(cells=[
        new_markdown_cell("# A small notebook"),
        new_code_cell("import os, sys\nvalues = [i * i for i in range(10)]\nprint('sum', sum(values))"),
        new_code_cell("values[-1] + 19"),
        new_code_cell("from IPython.display import HTML, display\ndisplay(HTML('<b>bold</b>'))"),
        new_code_cell("import sys\nprint('to stderr', file=sys.stderr)\nprint(os.getpid())"),
        new_code_cell("print(os.environ.get('BACKENDAI_TOKEN', 'no token here'))"),
    ])
    nb.metadata["kernelspec"] = {"name": "backendai-python", "display_name": "Python 3 (Backend.AI)",
                                 "language": "python"}
    client = NotebookClient(nb, kernel_name="backendai-python", timeout=120, startup_timeout=120)

    seen: dict[str, Any] = {}

    def on_cell_executed(cell_index: int, **_: Any) -> None:
        # While the kernel runs: a host process under the agent's state dir, listed RUNNING.
        if cell_index == 1:
            seen["kernels"] = json_of(c.api("GET", "kernels"))["kernels"]
            seen["dirs"] = user_kernel_dirs(c)
            seen["pids"] = [(d / "pid").read_text().strip() for d in seen["dirs"]]

    client.on_cell_executed = on_cell_executed
    client.execute()

    cells = nb.cells
    assert cells[1].outputs == [{"output_type": "stream", "name": "stdout", "text": "sum 285\n"}]
    assert cells[2].outputs[0]["output_type"] == "execute_result"
    assert cells[2].outputs[0]["data"]["text/plain"] == "100"
    assert cells[3].outputs[0]["output_type"] == "display_data"
    assert cells[3].outputs[0]["data"]["text/html"] == "<b>bold</b>"
    streams = {o["name"]: o["text"] for o in cells[4].outputs}
    assert streams["stderr"] == "to stderr\n"
    pid = int(streams["stdout"])
    # The client's token stays with the client: the kernel's environment is filtered.
    assert cells[5].outputs[0]["text"] == "no token here\n"

    assert len(seen["kernels"]) == 1 and seen["kernels"][0]["status"] == "RUNNING"
    assert len(seen["dirs"]) == 1, seen["dirs"]
    assert seen["pids"] == [str(pid)]

    # Shut down by nbclient: no row, no user kernel dir, no kernel process.
    wait_until(lambda: not alive(pid), 15, what=f"kernel process {pid} to end")
    assert c.kernel_rows() == []
    assert json_of(c.api("GET", "kernels", params={"all": "1"}))["kernels"] == []
    assert user_kernel_dirs(c) == []
    # What remains in the kernels dir is at most the one warm kernel of the pool.
    assert len(list(kernels_dir(c).iterdir())) <= 1


def test_failed_start_on_process_runtime(proc_cluster: Cluster) -> None:
    c = proc_cluster
    # Once the warm pool (one kernel by default) is full, the kernels dir holds still.
    wait_until(lambda: [d for d in kernels_dir(c).iterdir() if (d / "pid").exists()], 30,
               what="the warm kernel to start")
    before = sorted(p.name for p in kernels_dir(c).iterdir())
    r = c.api("POST", "kernels", json={"image": "backendai/kernel-python:3.11", "argv": ["/nonexistent"]})
    body = json_of(r)
    assert r.status_code == 500 and body["error"] == "start_failed", body
    assert "nonexistent" in body["message"] and "\n" not in body["message"]
    assert c.kernel_rows() == []
    assert sorted(p.name for p in kernels_dir(c).iterdir()) == before
