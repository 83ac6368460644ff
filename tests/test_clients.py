"""Terminal clients on a Backend.AI kernel: `jupyter console` and `jupyter run`, as users run them.

Both go through the kernelspec's provisioner unchanged; afterwards nothing of the kernel may
be left (container, host ports, kernel row), whichever way the client ended it: `jupyter
console` only asks the kernel to shut down, `jupyter run` shuts it down from an atexit hook.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, TRACE_CODE, Cluster, assert_no_leaks, parse_traces, wait_until

pytestmark = pytest.mark.docker

KERNEL = "backendai-python"


def check_trace(text: str) -> list:
    traces = parse_traces(text)
    assert len(traces) == 1, text
    assert traces[0].in_container is True and traces[0].uid == 1000, traces
    return traces


def test_console(cluster: Cluster) -> None:
    stdin = "print(6*7)\n" + TRACE_CODE + "exit\n"
    proc = subprocess.run([str(BIN / "jupyter"), "console", "--simple-prompt", "--kernel", KERNEL],
                          input=stdin, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^In \[1\]: 42$", proc.stdout, re.M), proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    traces = check_trace(proc.stdout)
    # The console only sends shutdown_request and exits; the kernel's container then ends and
    # the agent reports it, which the test can only observe.
    wait_until(lambda: not cluster.kernel_rows(), 30, what="the console's kernel to be gone")
    assert_no_leaks(cluster, traces)


def test_run(cluster: Cluster, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("import math\n"
                      "squares = [i * i for i in range(10)]\n"
                      "print('result', math.factorial(10) + sum(squares))\n" + TRACE_CODE)
    proc = subprocess.run([str(BIN / "jupyter"), "run", "--kernel", KERNEL, str(script)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(rf"^result {3628800 + 285}$", proc.stdout, re.M), proc.stdout
    assert "Traceback" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr
    traces = check_trace(proc.stdout)
    # `jupyter run` shuts its kernel down (atexit) before the process ends: nothing may be left.
    assert_no_leaks(cluster, traces)


def test_run_failing_script(cluster: Cluster, tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text(TRACE_CODE + "raise ValueError('boom')\n")
    proc = subprocess.run([str(BIN / "jupyter"), "run", "--kernel", KERNEL, str(script)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode != 0
    assert "ValueError" in proc.stdout + proc.stderr and "boom" in proc.stdout + proc.stderr
    traces = check_trace(proc.stdout)
    assert_no_leaks(cluster, traces)
