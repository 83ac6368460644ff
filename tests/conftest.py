"""Shared fixtures: a real cluster (`jupyter backendai up` in a subprocess), real Docker.

Every test session gets its own state dir, Jupyter dirs, ports and kernel port range, so it
never touches a user's running `up`. Docker tests fail (not skip) under CI when no engine
answers, because a skipped suite would hide exactly the thing it exists to check.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
IMAGE = "backendai/kernel-python:3.11"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def docker_engine() -> None:
    if docker_answers():
        return
    if os.environ.get("CI"):
        pytest.fail("no Docker engine answers; CI must run scripts/ensure-docker.sh first")
    pytest.skip("no Docker engine answers (outside CI this test is skipped)")


@pytest.fixture(scope="session")
def jupyter_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Private Jupyter dirs for the whole session, with our kernelspecs installed there."""
    base = tmp_path_factory.mktemp("jupyter")
    env = {
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_PATH": str(base / "data"),
        "IPYTHONDIR": str(base / "ipython"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    subprocess.run([str(BIN / "jupyter-backendai"), "kernelspec", "install", "--user"], check=True,
                   capture_output=True)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@dataclass
class Cluster:
    """A running `jupyter backendai up` (or `manager`) and the agents the test added."""

    state_dir: Path
    port: int
    rpc_port: int
    url: str = ""
    token: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    agent_ids: set[str] = field(default_factory=set)   # agents started with an explicit --agent-id
    proc_args: dict[str, list[str]] = field(default_factory=dict)  # process name -> argv, for restarts

    # ----- processes ----------------------------------------------------------------------

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = self.state_dir.parent / f"{name}.log"
        self.logs[name] = log
        f = open(log, "ab")
        proc = subprocess.Popen([str(BIN / "jupyter-backendai"), *args], stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, **self.env}, start_new_session=True)
        self.procs[name] = proc
        return proc

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")

    # ----- REST ---------------------------------------------------------------------------

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        tok = self.token if token is None else token
        if tok:
            headers.setdefault("Authorization", f"Bearer {tok}")
        return requests.request(method, f"{self.url}/api/v1/{path}", headers=headers, timeout=180, **kwargs)

    def wait_agents(self, n: int, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                agents = [a for a in self.api("GET", "agents").json()["agents"] if a["status"] == "ALIVE" and a["registered"]]
                if len(agents) >= n:
                    return agents
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{n} agents did not register within {timeout} s; logs: {self.logs}")

    # ----- what must not leak -------------------------------------------------------------

    def kernel_rows(self) -> list[dict[str, Any]]:
        db = sqlite3.connect(self.state_dir / "manager.sqlite")
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute("SELECT id, status, agent_id, name FROM kernels")]
        finally:
            db.close()

    def containers(self, include_pool: bool = False) -> list[Any]:
        """Kernel containers of this cluster's agents; pool kernels are excluded unless asked."""
        import docker

        client = docker.from_env()
        agent_ids = {a["id"] for a in self.api("GET", "agents").json()["agents"]}
        out = []
        # ignore_removed: other clusters' containers may go between the listing and its inspects
        for c in client.containers.list(all=True, filters={"label": "ai.backend.managed=1"}, ignore_removed=True):
            if c.labels.get("ai.backend.agent") in agent_ids:
                out.append(c)
        if include_pool:
            return out
        in_use = {r["name"] for r in self.kernel_rows()}
        return [c for c in out if c.labels.get("ai.backend.kernel") in in_use]


def start_cluster(tmp: Path, *, runtime: str = "docker", heartbeat: float = 1.0, extra: list[str] | None = None,
                  port_range: str = "31000-31999") -> Cluster:
    state = tmp / "state"
    state.mkdir(parents=True, exist_ok=True)
    c = Cluster(state_dir=state, port=free_port(), rpc_port=free_port())
    c.url = f"http://127.0.0.1:{c.port}"
    c.proc_args["up"] = ["up", f"--state-dir={state}", f"--port={c.port}", f"--rpc-port={c.rpc_port}",
                         f"--runtime={runtime}", f"--heartbeat={heartbeat}", f"--port-range={port_range}",
                         "--UpApp.write_connection=False", *(extra or [])]
    c.spawn("up", c.proc_args["up"])
    token_file = state / "admin-token"
    deadline = time.monotonic() + 60
    while not token_file.exists() and time.monotonic() < deadline:
        if c.procs["up"].poll() is not None:
            raise AssertionError("up exited:\n" + c.log("up"))
        time.sleep(0.1)
    c.token = token_file.read_text().strip()
    c.wait_agents(1)
    return c


def teardown_cluster(c: Cluster) -> None:
    for name in list(c.procs):
        c.stop(name)
    # Agents leave kernels running when they stop (a restarted agent re-adopts them): end the
    # process runtime's kernels (each leads its own session) and remove the Docker ones.
    for pid_file in c.state_dir.rglob("kernels/*/pid"):
        try:
            pid = int(pid_file.read_text())
            if str(pid_file.parent).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():  # not a reused pid
                os.killpg(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
    if docker_answers():  # leave nothing behind, pool kernels included
        import docker

        client = docker.from_env()
        agent_ids = set(c.agent_ids)
        for d in c.state_dir.rglob("agent-id"):
            agent_ids.add(d.read_text().strip())
        for cont in client.containers.list(all=True, filters={"label": "ai.backend.managed=1"}, ignore_removed=True):
            if cont.labels.get("ai.backend.agent") in agent_ids:
                try:
                    cont.remove(force=True)
                except docker.errors.NotFound:
                    pass


SPLIT_PORTS = (33000, 34999)


def start_split_cluster(tmp: Path, n_agents: int = 1, *, runtime: str = "docker", heartbeat: float = 1.0,
                        manager_extra: list[str] | None = None, agent_extra: list[str] | None = None,
                        ports: tuple[int, int] = SPLIT_PORTS) -> Cluster:
    """`jupyter backendai manager` plus N `jupyter backendai agent` processes, each its own.

    Agents get ids ``<tag>-a0``, ``<tag>-a1``..., state dirs under ``<state>/agents/`` and
    non-overlapping kernel port ranges inside ``ports`` (default 33000-34999). Processes are
    named ``manager`` and ``agent0``...; ``restart_process(c, name)`` starts one again with the
    same argv (also ``up`` of a `start_cluster` cluster).
    """
    state = tmp / "state"
    state.mkdir(parents=True, exist_ok=True)
    c = Cluster(state_dir=state, port=free_port(), rpc_port=free_port())
    c.url = f"http://127.0.0.1:{c.port}"
    c.proc_args["manager"] = ["manager", f"--state-dir={state}", f"--port={c.port}", f"--rpc-port={c.rpc_port}",
                               f"--heartbeat={heartbeat}", *(manager_extra or [])]
    c.spawn("manager", c.proc_args["manager"])
    token_file = state / "admin-token"
    wait_until(lambda: token_file.exists() or c.procs["manager"].poll() is not None, 60, 0.1, "manager start")
    if c.procs["manager"].poll() is not None:
        raise AssertionError("manager exited:\n" + c.log("manager"))
    c.token = token_file.read_text().strip()
    tag = os.urandom(3).hex()
    span = (ports[1] - ports[0] + 1) // max(n_agents, 1)
    for i in range(n_agents):
        aid = f"split-{tag}-a{i}"
        c.agent_ids.add(aid)
        low = ports[0] + i * span
        args = ["agent", f"--manager=tcp://127.0.0.1:{c.rpc_port}", f"--keys-dir={state / 'curve'}",
                f"--agent-state-dir={state / 'agents' / aid}", f"--agent-id={aid}",
                f"--port-range={low}-{low + span - 1}", f"--heartbeat={heartbeat}", f"--runtime={runtime}",
                *(agent_extra or [])]
        c.proc_args[f"agent{i}"] = args
        c.spawn(f"agent{i}", args)
    try:
        c.wait_agents(n_agents)
    except AssertionError:
        teardown_cluster(c)
        raise
    return c


def restart_process(c: Cluster, name: str) -> subprocess.Popen[bytes]:
    """Start a cluster process (``up``, ``manager``, ``agentN``) again with its first argv."""
    return c.spawn(name, c.proc_args[name])


def agent_id_of(c: Cluster, name: str) -> str:
    """The --agent-id a split cluster's agent process (``agent0``...) runs as."""
    return next(a.split("=", 1)[1] for a in c.proc_args[name] if a.startswith("--agent-id="))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory, docker_engine: None, jupyter_dirs: dict[str, str]) -> Iterator[Cluster]:
    """One shared Docker cluster for tests that don't restart or break it."""
    c = start_cluster(tmp_path_factory.mktemp("cluster"))
    saved = {k: os.environ.get(k) for k in ("BACKENDAI_URL", "BACKENDAI_TOKEN")}
    os.environ["BACKENDAI_URL"] = c.url
    os.environ["BACKENDAI_TOKEN"] = c.token
    yield c
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    teardown_cluster(c)


@pytest.fixture
def fresh_cluster(tmp_path: Path, docker_engine: None, jupyter_dirs: dict[str, str]) -> Iterator[Cluster]:
    """A private cluster for tests that restart or break it (port range apart from `cluster`)."""
    c = start_cluster(tmp_path, port_range="32000-32999")
    yield c
    teardown_cluster(c)


def wait_until(pred: Any, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s")


def json_of(resp: requests.Response) -> dict[str, Any]:
    try:
        return resp.json()
    except json.JSONDecodeError:
        raise AssertionError(f"not JSON: {resp.status_code} {resp.text[:200]}") from None


# ----- tracing one kernel and checking that nothing of it is left ---------------------------

# Run inside a kernel: prints one line naming its container (the hostname Docker gives it is
# the container id's prefix), its uid and the ports of its connection file, which are the
# host ports the agent published.
TRACE_CODE = (
    "import json as _j, os as _o, socket as _s\n"
    "from ipykernel.connect import get_connection_info as _gci\n"
    "_ci = _j.loads(_gci())\n"
    "print('BACKENDAI-TRACE', _j.dumps({'host': _s.gethostname(), 'uid': _o.getuid(), "
    "'container': _o.path.exists('/.dockerenv'), "
    "'ports': [_ci[k] for k in ('shell_port', 'iopub_port', 'stdin_port', 'control_port', 'hb_port')]}))\n"
)


@dataclass(frozen=True)
class KernelTrace:
    """What one kernel held: a container (its id prefix or its ai.backend.kernel label) and host ports."""

    container: str
    ports: tuple[int, ...]
    uid: int | None = None
    in_container: bool | None = None


def parse_traces(text: str) -> list[KernelTrace]:
    out = []
    for line in text.splitlines():
        if "BACKENDAI-TRACE " in line:
            d = json.loads(line.split("BACKENDAI-TRACE ", 1)[1])
            out.append(KernelTrace(d["host"], tuple(d["ports"]), d["uid"], d["container"]))
    return out


def trace_remote(cluster: Cluster, remote_id: str) -> KernelTrace:
    """Trace of a running kernel from the manager's view (name label and published ports)."""
    k = json_of(cluster.api("GET", f"kernels/{remote_id}"))
    conn = k["connection"]
    ports = tuple(int(conn[p]) for p in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"))
    names = [r["name"] for r in cluster.kernel_rows() if r["id"] == remote_id]
    assert len(names) == 1 and names[0], f"no row names kernel {remote_id}"
    return KernelTrace(names[0], ports)


def _matches(cont: dict[str, Any], ref: str) -> bool:
    return (cont["Id"].startswith(ref) or f"/backendai-{ref}" in (cont.get("Names") or [])
            or (cont.get("Labels") or {}).get("ai.backend.kernel") == ref)


def _port_held(port: int) -> bool:
    """Does anything listen on (or hold a bind of) this host port? Closed connections that
    linger in TIME_WAIT don't count: SO_REUSEADDR binds over them, as a new kernel would."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def assert_no_leaks(cluster: Cluster, traces: Any = (), wait: float = 0.0) -> None:
    """No kernel row, no (non-pool) kernel container, and nothing of the traced kernels left:
    their containers are gone and none of their host ports is published or held. ``wait``:
    seconds the rows may take to go (a shutdown that returns before the manager forgets)."""
    import docker

    deadline = time.monotonic() + wait
    while (rows := cluster.kernel_rows()) and time.monotonic() < deadline:
        time.sleep(0.2)
    if rows:
        # Reported once, here: deleted before the failure, so that the next tests on this
        # shared cluster do not queue behind a leaked kernel and fail for it too.
        for k in cluster.api("GET", "kernels", params={"all": "1"}).json().get("kernels", []):
            cluster.api("DELETE", f"kernels/{k['id']}")
    assert rows == [], f"kernel rows left: {rows}"
    # One listing call (other sessions' containers come and go meanwhile).
    everything = docker.from_env().api.containers(all=True)
    agent_ids = {a["id"] for a in cluster.api("GET", "agents").json()["agents"]}
    mine = [c for c in everything if (c.get("Labels") or {}).get("ai.backend.managed") == "1"
            and c["Labels"].get("ai.backend.agent") in agent_ids]
    from jupyter_backendai.agent.agent import Agent

    pool_max = sum(Agent.class_traits()["pool_sizes"].default().values()) * len(agent_ids)  # warm kernels
    assert len(mine) <= pool_max, f"containers beyond the warm pool: {[(c['Names'], c['Status'], c['Created']) for c in mine]}"
    # Only a running container holds its published ports (an exited one, e.g. one a crashed
    # engine left behind, still lists them in the API).
    published = {int(p["PublicPort"]): c for c in everything if c["State"] == "running"
                 for p in c.get("Ports") or [] if p.get("PublicPort")}
    for t in traces:
        same = [c["Names"] for c in everything if _matches(c, t.container)]
        assert not same, f"container of kernel {t.container} left: {same}"
        for p in t.ports:
            holder = published.get(p)
            if holder is not None and holder in mine:
                # The agent hands ports out round-robin; after a wrap-around a freed port
                # goes to a new (warm pool) kernel of this cluster. That is reuse, not a leak.
                continue
            assert holder is None, f"host port {p} of kernel {t.container} still published by {holder['Names']}"
            assert not _port_held(p), f"host port {p} of kernel {t.container} still in use"


# ----- end of kernel tracing helpers
