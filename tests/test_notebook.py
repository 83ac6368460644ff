"""Batch notebook runs on a Backend.AI kernel: nbclient, papermill and `jupyter backendai run`.

Each run must compute the right thing inside a container (uid 1000), keep state across
cells, and leave no container, host port or kernel row behind once it is over.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from conftest import BIN, ROOT, TRACE_CODE, Cluster, KernelTrace, assert_no_leaks, parse_traces

pytestmark = pytest.mark.docker

KERNEL = "backendai-python"


def make_notebook() -> Any:
    params = new_code_cell("n = 3\ngreeting = 'hi'")
    params.metadata["tags"] = ["parameters"]
    return new_notebook(
        cells=[
            params,
            new_code_cell(TRACE_CODE),
            new_code_cell("import numpy as np\n"
                          "a = np.arange(n * n, dtype=np.int64).reshape(n, n)\n"
                          "print('trace', int(np.trace(a @ a)))"),
            new_code_cell("acc = [greeting] * n"),
            new_code_cell("acc + [len(acc)]"),
        ],
        metadata={"kernelspec": {"name": KERNEL, "display_name": "Python 3 (Backend.AI)", "language": "python"}},
    )


def expected_trace(n: int) -> int:
    a = [[i * n + j for j in range(n)] for i in range(n)]
    return sum(a[i][j] * a[j][i] for i in range(n) for j in range(n))


def stream_text(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def check_outputs(nb: Any, n: int, greeting: str) -> Any:
    """The executed cells of make_notebook(); returns the kernel's trace."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    traces = parse_traces("".join(stream_text(c) for c in code))
    assert len(traces) == 1, [c.outputs for c in code]
    t = traces[0]
    assert t.in_container is True and t.uid == 1000, t
    assert f"trace {expected_trace(n)}\n" in "".join(stream_text(c) for c in code)
    last = code[-1].outputs
    assert [o.output_type for o in last] == ["execute_result"], last
    assert last[0].data["text/plain"] == repr([greeting] * n + [n])
    return t


def test_nbclient(cluster: Cluster) -> None:
    nb = make_notebook()
    seen: dict[str, Any] = {}

    def on_cell_executed(cell: Any, cell_index: int, execute_reply: Any) -> None:
        # While the kernel runs: its container exists, belongs to this cluster and is running,
        # and the manager has exactly this kernel RUNNING.
        if cell_index != 1:
            return
        t = parse_traces(stream_text(cell))[0]
        conts = [c for c in cluster.containers() if c.id.startswith(t.container)]
        seen["container"] = [(c.status, c.labels.get("ai.backend.kernel")) for c in conts]
        seen["rows"] = [(r["status"], r["name"]) for r in cluster.kernel_rows()]

    client = NotebookClient(nb, kernel_name=KERNEL, timeout=120, on_cell_executed=on_cell_executed)
    client.execute()
    t = check_outputs(nb, 3, "hi")
    assert len(seen["container"]) == 1 and seen["container"][0][0] == "running", seen
    assert seen["rows"] == [("RUNNING", seen["container"][0][1])], seen
    assert_no_leaks(cluster, [t])


def test_papermill(cluster: Cluster, tmp_path: Path) -> None:
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(make_notebook(), src)
    nb = papermill.execute_notebook(str(src), str(out), kernel_name=KERNEL,
                                    parameters={"n": 4, "greeting": "hello"}, progress_bar=False)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "n = 4" in injected[0].source and 'greeting = "hello"' in injected[0].source
    t = check_outputs(nb, 4, "hello")
    written = nbformat.read(out, as_version=4)
    assert written.cells[-1].outputs[0]["data"]["text/plain"] == repr(["hello"] * 4 + [4])
    assert written.metadata["papermill"]["parameters"] == {"n": 4, "greeting": "hello"}
    assert_no_leaks(cluster, [t])


def test_cli_run(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "hello-out.ipynb"
    proc = subprocess.run([str(BIN / "jupyter-backendai"), "run", str(ROOT / "examples" / "hello.ipynb"), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    m = re.search(r"host (\S+), uid (\d+), cwd ", text)
    assert m and m.group(2) == "1000", text
    assert "inside a container" in text
    assert re.search(r"mean [+-]0\.\d{4}, std (0\.99|1\.00)\d\d", text), text
    assert re.search(r"^42$", text, re.M), text
    assert "state survives across cells: {'answer': 42}" in text
    assert "wrote " in text and out.exists()
    nb = nbformat.read(out, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    assert code[2].outputs[0]["data"]["text/plain"] == "42"
    assert nb.metadata["kernelspec"]["name"] == KERNEL
    assert_no_leaks(cluster, [KernelTrace(m.group(1), ())])
