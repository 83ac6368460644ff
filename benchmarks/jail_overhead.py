# SPDX-License-Identifier: LGPL-3.0-or-later
"""Jail overhead: the same workloads with and without `sandbox/build/jail`, in one run.

Rows (each run natively and jailed, interleaved round by round so drift hits both alike):
  python CPU loop        a pure-Python loop (no system calls)                 goal <= 1.05x
  getppid x 1M           a C loop of untrapped system calls: the BPF filter's own cost
  open(O_RDONLY) x 1M    read-only opens + closes (Landlock checks, no trap)  goal <= 1.05x
                         (1M, not 100k: at 100k the jail's own ~1 ms start is most of the gap)
  fork+exec true x 500   process creation and exec: the trapped path          goal <= 1.4x
  gcc hello.c            a compiler driver: several fork/execs and file writes
  import numpy           a big package import (mmaps, many opens); a stdlib set if no numpy

Each figure is the median wall time of --runs runs of the whole command, jail start included
(the jail's own start, about one fork+exec, is inside every jailed figure).

Run: python benchmarks/jail_overhead.py [--runs N]
Exit status is non-zero only when something fails; a slow figure is a figure, not a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SANDBOX = ROOT / "sandbox"
JAIL = SANDBOX / "build" / "jail"
TESTBIN = SANDBOX / "build" / "tests"


@dataclass
class Row:
    name: str
    argv: list[str]
    goal: float | None = None
    native: list[float] = field(default_factory=list)
    jailed: list[float] = field(default_factory=list)


def numpy_python() -> str | None:
    for cand in ("/usr/bin/python3", shutil.which("python3") or "", sys.executable):
        if not cand:
            continue
        r = subprocess.run([cand, "-c", "import numpy, os, sys; print(os.path.realpath(sys.executable))"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.strip()
    return None


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{argv[:6]} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-500:]}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console()
    subprocess.run(["make", "-s", "-C", str(SANDBOX), "all", "tests"], check=True)
    work = Path(tempfile.mkdtemp(prefix="jail-bench-"))
    try:
        (work / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("hello");return 0;}\n')
        py = os.path.realpath("/usr/bin/python3")
        np_py = numpy_python()
        import_row = (["import numpy", [np_py, "-c", "import numpy"]] if np_py else
                      ["import stdlib set", [py, "-c", "import asyncio, email.mime.multipart, json, decimal, "
                                             "http.client, xml.dom.minidom, unittest, sqlite3"]])
        rows = [
            Row("python CPU loop", [py, "-c", "s = 0\nfor i in range(3_000_000): s += i * i"], 1.05),
            Row("getppid x 1M", [str(TESTBIN / "getppid_loop"), "1000000"]),
            Row("open(O_RDONLY) x 1M", [str(TESTBIN / "open_loop"), "/etc/hostname", "1000000"], 1.05),
            Row("fork+exec true x 500", [str(TESTBIN / "forkexec_loop"), "500", "/bin/true"], 1.4),
            Row("gcc hello.c", ["gcc", "-O1", "-o", str(work / "hello"), str(work / "hello.c")]),
            Row(import_row[0], import_row[1]),
        ]
        if not shutil.which("gcc"):
            rows = [r for r in rows if not r.name.startswith("gcc")]
        policy = {
            "version": 1, "network": "on", "max_procs": 256, "max_threads": 4096, "max_execs": 0,
            "exec_allow": [py, "/usr/bin/true", f"{TESTBIN}/", "/usr/bin/gcc", "/usr/bin/as", "/usr/bin/ld",
                           "/usr/lib/gcc/", *([np_py] if np_py else [])],
            "writable": [str(work), "/dev/null"], "landlock": "required",
        }
        pfile = work / "policy.json"
        pfile.write_text(json.dumps(policy))
        env = {**os.environ, "TMPDIR": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
        check = json.loads(subprocess.run([str(JAIL), "--check"], capture_output=True, text=True).stdout)
        console.print(f"jail --check: Landlock ABI {check['landlock_abi']}, seccomp trace {check['seccomp_trace']}, "
                      f"{os.cpu_count()} CPUs, {args.runs} runs per row (+1 warm-up)")
        for rnd in range(args.runs + 1):
            for row in rows:
                n = timed(row.argv, work, env)
                j = timed([str(JAIL), "--policy", str(pfile), "--", *row.argv], work, env)
                if rnd:  # round 0 warms caches
                    row.native.append(n)
                    row.jailed.append(j)
        t = Table(title="jail overhead: median wall time of the whole command, native vs jailed")
        for col in ("workload", "native", "jailed", "ratio", "goal"):
            t.add_column(col, justify="left" if col == "workload" else "right")
        for row in rows:
            n, j = statistics.median(row.native), statistics.median(row.jailed)
            ratio = j / n
            style = "" if row.goal is None else ("green" if ratio <= row.goal else "red")
            t.add_row(row.name, f"{n * 1e3:.1f} ms", f"{j * 1e3:.1f} ms", f"[{style}]{ratio:.3f}x[/]" if style else f"{ratio:.3f}x",
                      f"<= {row.goal}x" if row.goal else "")
        console.print(t)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
