"""Escape suite for the jail (sandbox/jail.c): each attack runs under the jail on the host, as root
and as an unprivileged user, and must end in a clear denial with the jail still in charge; the
things a kernel needs (computation, compilers, subprocesses, interrupts, stdin) must keep working.
One test runs the jail inside the kernel image under Docker's own seccomp profile, with all
capabilities dropped, no-new-privileges and the image's non-root user.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
SANDBOX = ROOT / "sandbox"
JAIL = SANDBOX / "build" / "jail"
TESTBIN = SANDBOX / "build" / "tests"
PY = "/usr/bin/python3"  # the system interpreter: readable by every user, unlike a venv under /root
PY_REAL = os.path.realpath(PY)
IMAGE = "backendai/kernel-python:3.11"
NOBODY = 65534

pytestmark = pytest.mark.skipif(sys.platform != "linux" or os.uname().machine != "x86_64",
                                reason="the jail is Linux x86_64 only")


@pytest.fixture(scope="session")
def jail_build() -> Path:
    subprocess.run(["make", "-s", "-C", str(SANDBOX), "all", "tests"], check=True, capture_output=True)
    return JAIL


@pytest.fixture(scope="session")
def scratch() -> Iterator[Path]:
    """A world-traversable scratch dir outside any test policy's writable paths."""
    d = Path(tempfile.mkdtemp(prefix="jailtest-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=["root", "nobody"])
def user(request: pytest.FixtureRequest) -> str:
    if request.param == "root" and os.geteuid() != 0:
        pytest.skip("needs root")
    if request.param == "nobody" and os.geteuid() != 0:
        return "self"  # unprivileged already
    return request.param


@dataclass
class Box:
    """One test's directories: rw (writable in the policy) and ro (same-length name, writable
    for everyone by file mode, so that only the jail stands between a program and it)."""

    base: Path
    rw: Path
    ro: Path
    user: str

    def policy(self, **kw: Any) -> Path:
        d: dict[str, Any] = {
            "version": 1, "network": "on", "max_procs": 64, "max_threads": 1024, "max_execs": 0,
            "exec_allow": [PY_REAL, "/usr/bin/dash", "/usr/bin/sleep", "/usr/bin/true", f"{TESTBIN}/"],
            "writable": [str(self.rw), "/dev/null"], "landlock": "required",
        }
        d.update(kw)
        p = self.base / f"policy-{len(list(self.base.glob('policy-*')))}.json"
        p.write_text(json.dumps(d))
        p.chmod(0o644)
        return p

    def popen_kw(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"cwd": str(self.rw), "env": {"PATH": "/usr/bin:/bin", "HOME": str(self.rw),
                                                             "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}}
        if self.user == "nobody":
            kw.update(user=NOBODY, group=NOBODY, extra_groups=[])
        return kw

    def run(self, policy: Path | None, argv: list[str], *, timeout: float = 60, input: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        cmd = ([str(JAIL), "--policy", str(policy), "--"] if policy else []) + argv
        kw = self.popen_kw()
        if env:
            kw["env"] = {**kw["env"], **env}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input, **kw)

    def py(self, policy: Path | None, code: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run(policy, [PY, "-c", textwrap.dedent(code)], **kw)


@pytest.fixture
def box(jail_build: Path, scratch: Path, user: str, request: pytest.FixtureRequest) -> Box:
    base = scratch / f"{request.node.name.replace('[', '-').replace(']', '')}"
    base.mkdir()
    base.chmod(0o755)
    rw, ro = base / "rw", base / "ro"
    for d in (rw, ro):
        d.mkdir()
        d.chmod(0o777)
    return Box(base, rw, ro, user)


def ok(r: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert r.returncode == code, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


# ----- the jail itself -------------------------------------------------------------------------


def test_check_reports_protections(jail_build: Path) -> None:
    r = subprocess.run([str(jail_build), "--check"], capture_output=True, text=True)
    info = json.loads(r.stdout)
    assert r.returncode == 0 and info["ok"], r.stdout + r.stderr
    assert info["landlock_abi"] >= 1 and info["seccomp_trace"] and info["ptrace"]


def test_policy_errors_refuse_to_start(box: Box) -> None:
    bad = box.base / "bad.json"
    bad.write_text('{"version": 1, "netwrk": "on"}')
    bad.chmod(0o644)
    r = box.run(bad, ["/usr/bin/true"])
    assert r.returncode == 125 and 'unknown key "netwrk"' in r.stderr
    bad.write_text('{"version": 1, "max_procs": "many"}')
    r = box.run(bad, ["/usr/bin/true"])
    assert r.returncode == 125 and "max_procs" in r.stderr


# ----- attacks ------------------------------------------------------------------------------------


def test_fork_bomb_hits_the_budget(box: Box) -> None:
    pol = box.policy(max_procs=12)
    r = ok(box.py(pol, """
        import os, time, errno
        live = 1
        errs = set()
        def bomb(depth):
            kids = []
            while True:
                try:
                    pid = os.fork()
                except OSError as e:
                    errs.add(e.errno)
                    break
                if pid == 0:
                    if depth < 3:
                        bomb(depth + 1)
                    time.sleep(0.5)
                    os._exit(0)
                kids.append(pid)
            return kids
        kids = bomb(0)
        print("kids", len(kids), "errnos", sorted(errs), flush=True)
        for k in kids:
            os.waitpid(k, 0)
        print("survived")
    """))
    assert "survived" in r.stdout
    kids = int(r.stdout.split()[1])
    assert 1 <= kids <= 11
    assert "[1]" in r.stdout  # EPERM
    assert "jail: denied fork (process budget 12 reached" in r.stderr


def test_thread_bomb_is_bounded_and_threads_work(box: Box) -> None:
    code = """
        import threading, time, sys
        n = int(sys.argv[1])
        ev = threading.Event()
        ts = [threading.Thread(target=ev.wait) for _ in range(n)]
        for t in ts: t.start()
        print("started", n, flush=True)
        ev.set()
        for t in ts: t.join()
        print("joined")
    """
    pol = box.policy(max_threads=200)
    r = ok(box.run(pol, [PY, "-c", textwrap.dedent(code), "150"]))
    assert "joined" in r.stdout
    r = box.run(pol, [PY, "-c", textwrap.dedent(code), "1000"])
    assert r.returncode == 128 + signal.SIGKILL, r.stdout + r.stderr
    assert "thread budget 200 exceeded" in r.stderr and "started" not in r.stdout


def test_mount_and_namespaces_denied(box: Box) -> None:
    r = ok(box.py(box.policy(), f"""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        res = libc.mount(b"none", {str(box.rw).encode()!r}, b"tmpfs", 0, None)
        print("mount", res, ctypes.get_errno())
        res = libc.unshare(0x00020000)  # CLONE_NEWNS
        print("unshare", res, ctypes.get_errno())
    """))
    assert "mount -1 1" in r.stdout and "unshare -1 1" in r.stdout
    assert "jail: denied mount" in r.stderr and "jail: denied unshare" in r.stderr


def test_ptrace_of_the_parent_denied(box: Box) -> None:
    r = ok(box.py(box.policy(), """
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        print("attach", libc.ptrace(16, os.getppid(), None, None), ctypes.get_errno())  # PTRACE_ATTACH
        print("traceme", libc.ptrace(0, 0, None, None), ctypes.get_errno())
    """))
    assert "attach -1 1" in r.stdout and "traceme -1 1" in r.stdout
    assert "jail: denied ptrace" in r.stderr


def test_kill_outside_the_tree_denied(box: Box) -> None:
    outside = subprocess.Popen(["sleep", "60"], **{k: v for k, v in box.popen_kw().items() if k != "cwd"})
    try:
        r = ok(box.py(box.policy(), f"""
            import os, signal, subprocess, ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            def t(what, f):
                try:
                    f(); print(what, "OK")
                except OSError as e:
                    print(what, e.errno)
            jail = os.getppid()
            t("pid1", lambda: os.kill(1, signal.SIGCONT))
            t("jail", lambda: os.kill(jail, signal.SIGKILL))
            t("outside", lambda: os.kill({outside.pid}, signal.SIGKILL))
            t("jailgroup", lambda: os.killpg(os.getpgid(jail), signal.SIGCONT))
            t("everyone", lambda: os.kill(-1, signal.SIGCONT))
            r = libc.syscall(234, jail, jail, 9); print("tgkill", r, ctypes.get_errno())
            r = libc.syscall(200, jail, 9); print("tkill", r, ctypes.get_errno())
            t("pidfd", lambda: signal.pidfd_send_signal(os.pidfd_open(jail), signal.SIGKILL))
            # inside the tree, signals work as usual
            p = subprocess.Popen(["sleep", "30"]); p.terminate(); print("child", p.wait())
            t("self-group", lambda: os.killpg(os.getpgid(0), 0))
        """))
        out = r.stdout
        for what in ("pid1", "jail", "outside", "jailgroup", "everyone", "pidfd"):
            assert f"{what} 1\n" in out, out
        assert "tgkill -1 1" in out and "tkill -1 1" in out
        assert "child -15" in out and "self-group OK" in out
        assert outside.poll() is None
        assert "jail: denied kill 1 " in r.stderr and f"jail: denied kill {outside.pid} " in r.stderr
    finally:
        outside.kill()
        outside.wait()


def test_writes_outside_allowed_dirs_denied(box: Box) -> None:
    (box.ro / "existing").write_text("original")
    (box.ro / "existing").chmod(0o666)
    code = f"""
        import os
        rw, ro = {str(box.rw)!r}, {str(box.ro)!r}
        def t(what, f):
            try:
                f(); print(what, "OK")
            except OSError as e:
                print(what, e.errno)
        def write(p):
            with open(p, "w") as f:
                f.write("x")
        t("inside", lambda: write(rw + "/file"))
        t("direct", lambda: write(ro + "/direct"))
        t("existing", lambda: write(ro + "/existing"))
        os.symlink(ro + "/vialink", rw + "/link")
        t("symlink", lambda: write(rw + "/link"))
        t("dotdot", lambda: write(rw + "/../ro/dotdot"))
        write(rw + "/moveme")
        t("rename", lambda: os.rename(rw + "/moveme", ro + "/moved"))
        t("hardlink", lambda: os.link(ro + "/existing", rw + "/hard"))
        t("mkdir", lambda: os.mkdir(ro + "/dir"))
        t("unlink", lambda: os.unlink(ro + "/existing"))
        t("truncate", lambda: os.truncate(ro + "/existing", 0))
        t("truncate-inside", lambda: os.truncate(rw + "/file", 0))
        with open(rw + "/file", "r+") as f:
            f.truncate(0)  # ftruncate on a writable fd is fine
        t("open-trunc", lambda: open(ro + "/existing", "r+").truncate(0))
    """
    r = ok(box.py(box.policy(), code))
    out = dict(line.split() for line in r.stdout.splitlines())
    assert out.pop("inside") == "OK"
    # truncate(2) by path is refused everywhere (EPERM, logged): Landlock's truncate right
    # would cost every open a path walk
    assert out.pop("truncate") == out.pop("truncate-inside") == "1"
    assert "jail: denied truncate" in r.stderr
    for what, res in out.items():
        assert res in ("13", "18"), f"{what}: {res}"  # EACCES, or EXDEV for links across policies
    assert sorted(os.listdir(box.ro)) == ["existing"] and (box.ro / "existing").read_text() == "original"
    # Control: the same program without the jail gets through (only the jail protects ro/).
    for p in box.rw.iterdir():
        p.unlink()
    r = ok(box.py(None, code))
    assert "direct OK" in r.stdout and "dotdot OK" in r.stdout


def test_path_flip_race_never_wins(box: Box) -> None:
    allowed, forbidden = box.rw / "target", box.ro / "target"
    r = ok(box.run(box.policy(), [str(TESTBIN / "race_open"), str(allowed), str(forbidden), "20000"], timeout=120))
    assert "escaped=0" in r.stdout and not forbidden.exists()


def test_seccomp_listener_cannot_stack(box: Box) -> None:
    r = ok(box.run(box.policy(), [str(TESTBIN / "seccomp_listener")]))
    assert "listener: EPERM" in r.stdout
    assert "plain filter: OK" in r.stdout  # filters that cannot outrank the jail stay allowed
    assert "jail: denied seccomp filter with a new listener" in r.stderr


def test_exec_not_on_the_allow_list_is_killed_before_it_runs(box: Box) -> None:
    marker = box.rw / "marker-ran"
    binary = box.rw / "marker"
    shutil.copy(TESTBIN / "marker", binary)
    binary.chmod(0o755)
    pol = box.policy(exec_allow=[PY_REAL])
    r = ok(box.py(pol, f"""
        import subprocess
        p = subprocess.run([{str(binary)!r}, {str(marker)!r}], capture_output=True, text=True)
        print("rc", p.returncode, repr(p.stdout))
        print("still here")
    """))
    assert "rc -9 ''" in r.stdout and "still here" in r.stdout
    assert f"jail: denied execve {binary}" in r.stderr
    assert not marker.exists()
    # the jailed command itself is checked too
    r = box.run(pol, [str(binary), str(marker)])
    assert r.returncode == 128 + signal.SIGKILL and "RAN" not in r.stdout and not marker.exists()
    # an exec budget refuses further execs with EPERM
    r = ok(box.py(box.policy(max_execs=2), """
        import subprocess
        for i in range(4):
            try:
                print(i, subprocess.run(["/usr/bin/true"]).returncode)
            except OSError as e:
                print(i, "errno", e.errno)
    """))
    assert r.stdout.split("\n")[:4] == ["0 0", "1 0", "2 errno 1", "3 errno 1"], r.stdout
    assert "exec budget 2 reached" in r.stderr


def test_raw_and_packet_sockets_denied(box: Box) -> None:
    r = ok(box.py(box.policy(network="on"), """
        import socket
        for name, args in (("raw", (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)),
                           ("raw6", (socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)),
                           ("packet", (socket.AF_PACKET, socket.SOCK_RAW, 0)),
                           ("tcp", (socket.AF_INET, socket.SOCK_STREAM, 0)),
                           ("unix", (socket.AF_UNIX, socket.SOCK_STREAM, 0))):
            try:
                socket.socket(*args).close(); print(name, "OK")
            except OSError as e:
                print(name, e.errno)
    """))
    assert r.stdout.split("\n")[:5] == ["raw 1", "raw6 1", "packet 1", "tcp OK", "unix OK"], r.stdout
    assert "jail: denied socket AF_INET SOCK_RAW" in r.stderr and "jail: denied socket AF_PACKET" in r.stderr


@pytest.fixture
def tcp_server() -> Iterator[int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    yield srv.getsockname()[1]
    srv.close()


def test_tcp_connect_when_network_is_off(box: Box, tcp_server: int) -> None:
    code = f"""
        import socket
        try:
            s = socket.create_connection(("127.0.0.1", {tcp_server}), timeout=5); print("connect OK")
        except OSError as e:
            print("connect", e.errno)
        try:
            l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(); print("listen OK")
            c = socket.socket(socket.AF_UNIX); print("unix OK")
        except OSError as e:
            print("listen", e.errno)
        try:
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM); print("udp OK")
        except OSError as e:
            print("udp", e.errno)
    """
    r = ok(box.py(box.policy(network="off"), code))
    assert r.stdout.split("\n")[:3] == ["connect 1", "listen 1", "udp 1"], r.stdout
    assert "jail: denied socket AF_INET" in r.stderr
    # "listen": what an ipykernel needs (bind and accept its ports), still no way out
    r = ok(box.py(box.policy(network="listen"), code))
    assert r.stdout.split("\n")[:4] == ["connect 13", "listen OK", "unix OK", "udp 1"], r.stdout
    r = ok(box.py(box.policy(network="on"), code))
    assert r.stdout.startswith("connect OK")


# ----- what must keep working --------------------------------------------------------------------


def _python_with_numpy() -> str | None:
    for cand in (PY, shutil.which("python3") or "", sys.executable):
        r = subprocess.run([cand, "-c", "import numpy, os, sys; print(os.path.realpath(sys.executable))"],
                           capture_output=True, text=True) if cand else None
        if r and r.returncode == 0:
            return r.stdout.strip()  # the interpreter itself, not a launcher script in front of it
    return None


def test_python_computation(box: Box) -> None:
    r = ok(box.py(box.policy(), """
        import hashlib, json, math
        acc = sum(math.sqrt(i) for i in range(200000))
        print(json.dumps({"acc": round(acc), "h": hashlib.sha256(b"x" * 100000).hexdigest()[:8]}))
    """))
    import hashlib
    import math
    assert json.loads(r.stdout) == {"acc": round(sum(math.sqrt(i) for i in range(200000))),
                                    "h": hashlib.sha256(b"x" * 100000).hexdigest()[:8]}
    np_py = _python_with_numpy()
    if np_py and box.user == "root":  # a numpy-capable interpreter here lives under /root
        pol = box.policy(exec_allow=[np_py])
        r = ok(box.run(pol, [np_py, "-c", "import numpy as np; a = np.arange(1e6); print(int(a.sum()), np.linalg.norm(np.eye(3)))"]))
        assert r.stdout.split()[0] == "499999500000"


@pytest.mark.skipif(not shutil.which("gcc"), reason="no gcc")
def test_gcc_compiles_and_runs_when_allowed(box: Box) -> None:
    (box.rw / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("hello from jail");return 0;}\n')
    pol = box.policy(exec_allow=["/bin/sh", "/usr/bin/gcc", "/usr/bin/as", "/usr/bin/ld", "/usr/lib/gcc/", str(box.rw) + "/"],
                     writable=[str(box.rw), "/dev/null"])
    r = ok(box.run(pol, ["/bin/sh", "-c", "gcc -O1 -o hello hello.c && ./hello"], env={"TMPDIR": str(box.rw)},
                   timeout=120))
    assert "hello from jail" in r.stdout
    # without the compiler on the list it is killed at exec
    r = box.run(box.policy(exec_allow=["/usr/bin/dash"]), ["/bin/sh", "-c", "gcc -o hello2 hello.c; echo rc=$?"])
    assert "rc=137" in r.stdout and "jail: denied execve" in r.stderr


def test_sigint_interrupts_and_the_kernel_keeps_running(box: Box) -> None:
    code = """
        import time, sys
        for i in range(2):
            try:
                print("ready", flush=True)
                time.sleep(30)
                print("not interrupted", flush=True)
            except KeyboardInterrupt:
                print("interrupted", flush=True)
        print("alive", flush=True)
    """
    kw = box.popen_kw()
    p = subprocess.Popen([str(JAIL), "--policy", str(box.policy()), "--", PY, "-c", textwrap.dedent(code)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    try:
        for _ in range(2):
            assert p.stdout.readline() == "ready\n"
            time.sleep(0.3)  # into time.sleep
            p.send_signal(signal.SIGINT)  # to the jail, as tini -g does: forwarded to the kernel's group
            assert p.stdout.readline() == "interrupted\n"
        assert p.stdout.readline() == "alive\n"
        assert p.wait(10) == 0
    finally:
        p.kill()
        p.wait()


def test_stdin_reads_work(box: Box) -> None:
    r = ok(box.py(box.policy(), """
        a = input("name? ")
        b = input()
        print("got", a, b)
    """, input="alice\nbob\n"))
    assert "got alice bob" in r.stdout


def test_exit_status_and_subprocesses(box: Box) -> None:
    r = box.py(box.policy(), """
        import subprocess, sys
        print(subprocess.run(["/bin/sh", "-c", "echo from-sh; exit 3"]).returncode, flush=True)
        sys.exit(7)
    """)
    assert r.returncode == 7 and "from-sh\n3" in r.stdout
    r = box.py(box.policy(), "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert r.returncode == 128 + signal.SIGTERM


# ----- inside the kernel image, under Docker's default seccomp profile ---------------------------


DOCKER_CODE = r"""
import ctypes, json, os, signal, socket, subprocess
libc = ctypes.CDLL(None, use_errno=True)
out = {}
def t(what, f):
    try:
        r = f(); out[what] = "OK" if r is None else r
    except OSError as e:
        out[what] = e.errno
import numpy as np
out["numpy"] = int(np.arange(1000).sum())
t("ls", lambda: subprocess.run(["ls", "/"], capture_output=True).returncode)
t("denied_exec", lambda: subprocess.run(["/usr/bin/tini", "--version"], capture_output=True).returncode)
t("write_home", lambda: open("/home/work/x", "w").close())
t("write_tmp", lambda: open("/tmp/x", "w").close())
t("write_venv", lambda: open("/opt/kernel/x", "w").close())
t("kill1", lambda: os.kill(1, signal.SIGTERM))
def c_call(r):
    if r != 0:
        raise OSError(ctypes.get_errno(), "failed")
t("mount", lambda: c_call(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)))
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
t("connect", lambda: socket.create_connection(l.getsockname(), timeout=3).close())
t("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, 1).close())
out["budget_fork"] = 0
pids = []
try:
    for _ in range(100):
        pid = os.fork()
        if pid == 0:
            import time; time.sleep(2); os._exit(0)
        pids.append(pid)
except OSError as e:
    out["budget_fork"] = e.errno
out["forked"] = len(pids)
for p in pids:
    os.kill(p, 9); os.waitpid(p, 0)
print("RESULT", json.dumps(out), flush=True)
"""


@pytest.mark.docker
def test_jail_inside_the_kernel_image(docker_engine: None, jail_build: Path, scratch: Path) -> None:
    from jupyter_backendai.jail import policy_for_image

    pol = policy_for_image(IMAGE, {"max_procs": 20})
    pfile = pol.write(scratch / "docker-policy.json")
    base = ["docker", "run", "--rm", "-v", f"{jail_build}:/usr/local/bin/jail:ro", "-v", f"{pfile}:/etc/jail.json:ro",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--user", "1000",
            # The image's entrypoint already puts a jail in front; this test drives its own.
            "--entrypoint", "/usr/bin/tini", IMAGE, "-g", "--"]
    r = subprocess.run(base + ["/usr/local/bin/jail", "--check", "--policy", "/etc/jail.json"],
                       capture_output=True, text=True, timeout=120)
    info = json.loads(r.stdout)
    assert r.returncode == 0 and info["ok"] and info["uid"] == 1000, r.stdout + r.stderr
    r = subprocess.run(base + ["/usr/local/bin/jail", "--policy", "/etc/jail.json", "--", "/opt/kernel/bin/python",
                               "-c", DOCKER_CODE], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.split("RESULT ", 1)[1])
    assert out["numpy"] == 499500 and out["ls"] == 0
    assert out["denied_exec"] == -9 and "jail: denied execve /usr/bin/tini" in r.stderr
    assert out["write_home"] == "OK" and out["write_tmp"] == "OK" and out["write_venv"] == 13
    assert out["kill1"] == 1 and out["mount"] == 1
    assert out["connect"] == 13 and out["raw"] == 1
    assert out["budget_fork"] == 1 and 1 <= out["forked"] < 20


# ----- a real ipykernel under the jail -----------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="the test venv's interpreter lives under /root")
def test_ipykernel_under_the_jail(jail_build: Path, tmp_path: Path) -> None:
    """The default policy ("listen") carries a real ipykernel: execute, subprocesses, an
    interrupt by SIGINT to the jail (as tini -g sends it) and by interrupt_request, and no
    way out over TCP."""
    from jupyter_client import BlockingKernelClient
    from jupyter_client.connect import write_connection_file

    from jupyter_backendai.jail import policy_for_image

    home = tmp_path / "home"
    home.mkdir()
    conn, _ = write_connection_file(str(tmp_path / "conn.json"), ip="127.0.0.1")
    exe = os.path.realpath(sys.executable)
    pol = policy_for_image("python", {"writable": [str(home), "/dev/null", "/dev/urandom"], "exec_allow+": [exe]})
    pfile = pol.write(tmp_path / "jail.json")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "IPYTHONDIR": str(home / ".ipython"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "MPLCONFIGDIR": str(home), "LANG": "C.UTF-8"}
    p = subprocess.Popen([str(jail_build), "--policy", str(pfile), "--", sys.executable, "-m", "ipykernel_launcher", "-f", conn],
                         env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kc = BlockingKernelClient()
    kc.load_connection_file(conn)
    kc.start_channels()

    def run(code: str, timeout: float = 30, during: Any = None) -> tuple[str, list[str]]:
        msg_id = kc.execute(code)
        out: list[str] = []
        status = ""
        deadline = time.monotonic() + timeout
        fired = False
        while time.monotonic() < deadline:
            try:
                m = kc.get_iopub_msg(timeout=1)
            except Exception:
                continue
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            if m["msg_type"] == "stream":
                out.append(m["content"]["text"])
                if during and not fired and "sleeping" in m["content"]["text"]:
                    time.sleep(0.3)
                    during()
                    fired = True
            elif m["msg_type"] == "error":
                out.append(m["content"]["ename"])
            elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                reply = kc.get_shell_msg(timeout=timeout)
                status = reply["content"]["status"]
                break
        return status, out

    try:
        kc.wait_for_ready(timeout=60)
        st, out = run("import subprocess; print(subprocess.run(['echo', 'hi'], capture_output=True, text=True).stdout.strip())")
        assert st == "ok" and "hi" in "".join(out)
        st, out = run("import time; print('sleeping', flush=True); time.sleep(30)",
                      during=lambda: p.send_signal(signal.SIGINT))
        assert st == "error" and "KeyboardInterrupt" in out
        st, out = run("import time; print('sleeping', flush=True); time.sleep(30)",
                      during=lambda: kc.control_channel.send(kc.session.msg("interrupt_request", {})))
        assert st == "error" and "KeyboardInterrupt" in out
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen()
            st, out = run(f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {srv.getsockname()[1]}), timeout=3)\n"
                          "    print('connected')\nexcept OSError as e:\n    print('errno', e.errno)")
        assert "errno 13" in "".join(out)
        st, out = run("print(sum(range(10**6)))")
        assert st == "ok" and "499999500000" in "".join(out)
        kc.shutdown()
        assert p.wait(30) == 0
    finally:
        kc.stop_channels()
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.mark.docker
def test_interrupt_through_tini_and_the_jail_in_the_image(docker_engine: None, jail_build: Path, scratch: Path) -> None:
    """The image's entrypoint chain (tini -g -> jail -> kernel): `docker kill -s INT` interrupts
    the kernel, which keeps running."""
    from jupyter_backendai.jail import policy_for_image

    pfile = policy_for_image(IMAGE).write(scratch / "docker-default.json")
    code = ("import time\nfor i in range(2):\n    try:\n        print('ready', flush=True); time.sleep(30)\n"
            "    except KeyboardInterrupt:\n        print('interrupted', flush=True)\nprint('alive')\n")
    cid = subprocess.run(["docker", "run", "-d", "-v", f"{jail_build}:/usr/local/bin/jail:ro",
                          "-v", f"{pfile}:/etc/jail.json:ro", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                          "--user", "1000", "--entrypoint", "/usr/bin/tini", IMAGE, "-g", "--",
                          "/usr/local/bin/jail", "--policy", "/etc/jail.json", "--", "/opt/kernel/bin/python", "-u", "-c", code],
                         capture_output=True, text=True, check=True).stdout.strip()
    try:
        def logs() -> str:
            return subprocess.run(["docker", "logs", cid], capture_output=True, text=True).stdout
        for n in (1, 2):
            deadline = time.monotonic() + 30
            while logs().count("ready") < n and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.3)
            subprocess.run(["docker", "kill", "-s", "INT", cid], check=True, capture_output=True)
        code_ = subprocess.run(["docker", "wait", cid], capture_output=True, text=True, timeout=60).stdout.strip()
        assert code_ == "0" and logs().split() == ["ready", "interrupted", "ready", "interrupted", "alive"], logs()
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
