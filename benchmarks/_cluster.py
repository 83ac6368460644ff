# Copyright (C) 2025 the jupyter-backendai authors.
# SPDX-License-Identifier: LGPL-3.0-or-later
"""Shared plumbing for the kernel benchmarks: a private cluster, a plain `docker run` kernel,
statistics and the result table.

Everything a benchmark starts lives in one temp dir and is torn down on exit, on Ctrl-C and on
SIGTERM: the `up` process, every container of its agent (pool kernels included) and every
baseline container (label ``ai.backend.bench=<run id>``). Nothing here touches a user's own
`jupyter backendai up`, Jupyter dirs or kernel port range.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
IMAGE = "backendai/kernel-python:3.11"
KERNEL_NAME = "backendai-python"
PORT_RANGE = (34000, 34999)
# The docker-run baseline takes its host ports from the top of the range, the agent from the
# bottom (it hands ports out in order and skips any port that something else holds).
BASELINE_PORTS = (34800, 34999)
RUN_ID = uuid.uuid4().hex[:8]
BENCH_LABEL = "ai.backend.bench"
OFFERED_CPUS = 64
PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----- the private sandbox: temp dir, Jupyter dirs, cleanup ---------------------------------

class Sandbox:
    """A temp dir with private Jupyter dirs (our kernelspecs installed) and a cleanup list."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"bai-bench-{RUN_ID}-"))
        self._cleanups: list[Any] = []
        self.agent_ids: set[str] = set()
        self.leaked: list[str] = []
        env = {
            "JUPYTER_RUNTIME_DIR": str(self.dir / "jupyter" / "runtime"),
            "JUPYTER_DATA_DIR": str(self.dir / "jupyter" / "data"),
            "JUPYTER_CONFIG_DIR": str(self.dir / "jupyter" / "config"),
            "JUPYTER_PATH": str(self.dir / "jupyter" / "data"),
            "IPYTHONDIR": str(self.dir / "ipython"),
        }
        os.environ.update(env)
        os.environ.pop("BACKENDAI_URL", None)
        os.environ.pop("BACKENDAI_TOKEN", None)
        subprocess.run([str(BIN / "jupyter-backendai"), "kernelspec", "install", "--user"], check=True,
                       capture_output=True)
        # The local-ipykernel baseline: python3 from this interpreter, in the same private dirs.
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user", "--name", "python3"],
                       check=True, capture_output=True)
        atexit.register(self.close)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    def on_close(self, fn: Any) -> None:
        self._cleanups.append(fn)

    def close(self) -> None:
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except Exception as e:  # keep cleaning up the rest
                log(f"cleanup: {type(e).__name__}: {e}")
        remove_containers({f"{BENCH_LABEL}={RUN_ID}"})
        shutil.rmtree(self.dir, ignore_errors=True)
        # Check, don't assume: nothing of ours may be left.
        left = [c.name for c in docker_client().containers.list(all=True, filters={"label": f"{BENCH_LABEL}={RUN_ID}"})]
        for aid in self.agent_ids:
            left += [c.name for c in docker_client().containers.list(all=True, filters={"label": f"ai.backend.agent={aid}"})]
        if left:
            log(f"LEFT BEHIND: {left}")
        self.leaked = left


def docker_client() -> Any:
    import docker

    return docker.from_env(timeout=60)


def remove_containers(label: set[str] | str) -> int:
    client = docker_client()
    n = 0
    for c in client.containers.list(all=True, filters={"label": list(label) if isinstance(label, set) else label}):
        try:
            c.remove(force=True)
            n += 1
        except Exception:
            pass
    return n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----- a private cluster ------------------------------------------------------------------

@dataclass
class Cluster:
    sandbox: Sandbox
    name: str
    pool_size: int
    dir: Path = field(init=False)
    url: str = ""
    token: str = ""
    agent_id: str = ""
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.dir = self.sandbox.dir / self.name

    def start(self) -> "Cluster":
        state = self.dir / "state"
        state.mkdir(parents=True)
        port, rpc = free_port(), free_port()
        self.url = f"http://127.0.0.1:{port}"
        pools = json.dumps({IMAGE: self.pool_size})
        logf = open(self.dir / "up.log", "ab")
        self.proc = subprocess.Popen(
            [str(BIN / "jupyter-backendai"), "up", f"--state-dir={state}", f"--port={port}", f"--rpc-port={rpc}",
             f"--port-range={PORT_RANGE[0]}-{PORT_RANGE[1]}", "--UpApp.write_connection=False",
             f"--Agent.pool_sizes={pools}",
             # Benchmark kernels idle between round trips (each is still capped by its own
             # --cpus): offer more cores than the host has, so that the scheduler's accounting
             # does not leave a run's third kernel PENDING on a 2-core machine.
             f"--Agent.cpu={OFFERED_CPUS}"],
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        self.sandbox.on_close(self.stop)
        token_file = state / "admin-token"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"`up` exited with {self.proc.returncode}:\n{self.log_text()}")
            if token_file.exists() and token_file.read_text().strip():
                break
            time.sleep(0.05)
        self.token = token_file.read_text().strip()
        while time.monotonic() < deadline:
            try:
                agents = [a for a in self.api("GET", "agents")["agents"] if a["status"] == "ALIVE" and a["registered"]]
                if agents:
                    self.agent_id = agents[0]["id"]
                    self.sandbox.agent_ids.add(self.agent_id)
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the agent did not register within 60 s:\n{self.log_text()}")
        os.environ["BACKENDAI_URL"] = self.url
        os.environ["BACKENDAI_TOKEN"] = self.token
        return self

    def log_text(self) -> str:
        return (self.dir / "up.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.agent_id:  # pool kernels stay up across an agent stop: remove them
            remove_containers(f"ai.backend.agent={self.agent_id}")
        for k in ("BACKENDAI_URL", "BACKENDAI_TOKEN"):
            if os.environ.get(k) in (self.url, self.token):
                os.environ.pop(k, None)

    def api(self, method: str, path: str) -> Any:
        req = urllib.request.Request(f"{self.url}/api/v1/{path}", method=method,
                                     headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=30) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, val = line.rpartition(" ")
                try:
                    out[key] = float(val)
                except ValueError:
                    pass
        return out

    def starts(self, pooled: bool) -> tuple[float, float]:
        """(count, sum of seconds) of the manager's kernel starts, placement to ready."""
        m = self.metrics()
        lab = f'{{pooled="{str(pooled).lower()}"}}'
        return (m.get(f"backendai_kernel_start_seconds_count{lab}", 0.0),
                m.get(f"backendai_kernel_start_seconds_sum{lab}", 0.0))

    # ----- the warm pool's readiness -----------------------------------------------------

    def _containers(self) -> list[Any]:
        return docker_client().containers.list(filters={"label": f"ai.backend.agent={self.agent_id}"})

    def wait_pool(self, want: int, timeout: float = 120.0) -> float:
        """Block until ``want`` idle kernels are warm; return the seconds waited.

        No kernels are handed out while this runs (the benchmark shuts each one down first),
        so every container of this agent is a pool kernel or a pool kernel being started. A
        container counts as warm once it answers kernel_info on its own connection file (the
        agent's test); then we wait out the agent's 0.5 s re-send interval, because the
        agent may see that answer up to one interval after we do, and only then puts it in the pool.
        """
        started = time.monotonic()
        deadline = started + timeout
        kernels_dir = self.dir / "state" / "agent" / "kernels"
        while time.monotonic() < deadline:
            containers = self._containers()
            if len(containers) >= want:
                ready = 0
                for c in containers:
                    conn = kernels_dir / c.labels.get("ai.backend.kernel", "?") / "connection.json"
                    if conn.exists() and answers_kernel_info(json.loads(conn.read_text()), timeout=0.3):
                        ready += 1
                if ready >= want:
                    time.sleep(0.6)
                    return time.monotonic() - started
            time.sleep(0.1)
        states = [(c.name, c.status) for c in self._containers()]
        raise RuntimeError(f"the warm pool did not reach {want} kernel(s) within {timeout:g} s; "
                           f"containers {states}; `up` log:\n{self.log_text()}")


def answers_kernel_info(conn: dict[str, Any], timeout: float) -> bool:
    from jupyter_client import BlockingKernelClient

    info = dict(conn)
    info["ip"] = "127.0.0.1"
    kc = BlockingKernelClient()
    kc.load_connection_info(info)
    kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
    try:
        kc.kernel_info()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if kc.get_shell_msg(timeout=max(0.01, end - time.monotonic()))["msg_type"] == "kernel_info_reply":
                    return True
            except Exception:
                pass
        return False
    finally:
        kc.stop_channels()


# ----- a kernel in a plain `docker run` (the agent's container, without the agent) ------------

class DockerRunKernel:
    """The same image, argv, limits, labels-free options, connection file and published ports
    as agent/runtime/docker.py uses, started with the docker CLI."""

    _next_port = BASELINE_PORTS[0]

    def __init__(self, sandbox: Sandbox, image: str = IMAGE):
        self.sandbox, self.image = sandbox, image
        self.name = f"bai-bench-{RUN_ID}-{uuid.uuid4().hex[:8]}"
        self.dir = sandbox.dir / "docker-run" / self.name
        self.ports = self._take_ports(5)
        self.key = secrets.token_hex(32)
        self.connection: dict[str, Any] = dict(zip(PORT_NAMES, self.ports))
        self.connection.update(ip="127.0.0.1", key=self.key, transport="tcp", signature_scheme="hmac-sha256")

    @classmethod
    def _take_ports(cls, n: int) -> list[int]:
        got: list[int] = []
        for _ in range(BASELINE_PORTS[1] - BASELINE_PORTS[0] + 1):
            p = cls._next_port
            cls._next_port = BASELINE_PORTS[0] if p >= BASELINE_PORTS[1] else p + 1
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    continue
            got.append(p)
            if len(got) == n:
                return got
        raise RuntimeError(f"no {n} free ports in {BASELINE_PORTS}")

    def argv(self) -> list[str]:
        labels = docker_client().images.get(self.image).labels or {}
        uid = labels.get("ai.backend.uid", "1000")
        kernel_argv = json.loads(labels["ai.backend.kernelspec"])["argv"]
        self.dir.mkdir(parents=True)
        conn_path = self.dir / "connection.json"
        fd = os.open(conn_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({**self.connection, "ip": "0.0.0.0"}, f)
        if os.geteuid() == 0:
            os.chown(conn_path, int(uid), int(uid))
        cmd = ["docker", "run", "-d", "--name", self.name, "--label", f"{BENCH_LABEL}={RUN_ID}",
               "--user", uid, "--cpus", "1", "--memory", "1g", "--memory-swap", "1g", "--pids-limit", "512",
               "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
               "-v", f"{conn_path}:/run/backendai/connection.json:ro"]
        for p in self.ports:
            cmd += ["-p", f"127.0.0.1:{p}:{p}"]
        cmd += [self.image, *[a.replace("{connection_file}", "/run/backendai/connection.json") for a in kernel_argv]]
        return cmd

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


# ----- statistics and the table -----------------------------------------------------------

def quantile(xs: list[float], q: float) -> float:
    """Linear-interpolated quantile (q in [0, 1])."""
    s = sorted(xs)
    if not s:
        return float("nan")
    if len(s) == 1:
        return s[0]
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def fmt_ms(seconds: float) -> str:
    if seconds != seconds:
        return "-"
    ms = seconds * 1000
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms"


def fmt_ratio(a: float, b: float) -> str:
    if a != a or b != b or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def console() -> Any:
    """A rich console wide enough for the tables even when stdout is not a terminal."""
    from rich.console import Console

    return Console(width=max(Console().width, 170))
