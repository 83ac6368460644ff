"""The jail around real kernels started through the product: on by default, visible denials,
per-kernel policies that only an admin may loosen."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from jupyter_client import BlockingKernelClient, KernelManager

from conftest import IMAGE, Cluster, json_of

pytestmark = pytest.mark.docker


def run(kc: BlockingKernelClient, code: str) -> tuple[str, str, dict[str, Any]]:
    """Execute ``code``; return its stdout, stderr and execute_reply content."""
    out: list[str] = []
    err: list[str] = []

    def collect(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            (out if msg["content"]["name"] == "stdout" else err).append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            err.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

    reply = kc.execute_interactive(code, output_hook=collect, timeout=60)
    return "".join(out), "".join(err), reply["content"]


@pytest.fixture
def managed(cluster: Cluster) -> Any:
    """A backendai-python kernel through the provisioner: (manager, ready client)."""
    km = KernelManager(kernel_name="backendai-python")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.fixture
def kernel(managed: Any) -> BlockingKernelClient:
    return managed[1]


def test_kernel_runs_under_the_jail_by_default(kernel: BlockingKernelClient) -> None:
    out, err, reply = run(kernel, (
        "import os\n"
        "cmd = lambda pid: open(f'/proc/{pid}/cmdline','rb').read().split(b'\\0')[0].decode()\n"
        "print(cmd(1), cmd(os.getppid()))"))
    assert reply["status"] == "ok", err
    init, parent = out.split()
    assert init.endswith("tini") and parent == "/usr/local/bin/jail"


def test_denials_are_visible_in_the_cell(kernel: BlockingKernelClient) -> None:
    out, err, reply = run(kernel, (
        "import subprocess\n"
        "r = subprocess.run(['/usr/bin/perl', '-e', 'print 1'])\n"
        "print('perl returncode', r.returncode)\n"
        "c = subprocess.run(['/usr/bin/perl', '-e', 'print 1'], capture_output=True)\n"
        "print('captured', c.returncode, c.stdout, c.stderr.decode().strip())"))
    assert reply["status"] == "ok"
    assert "perl returncode -9" in out            # killed before it ran a single instruction
    # And the user is told why, in the notebook. ipykernel forwards what other processes write
    # to its stderr from a reader thread, so the line may trail the cell's reply by a moment.
    deadline = time.monotonic() + 10
    while "jail: denied execve /usr/bin/perl" not in err and time.monotonic() < deadline:
        err += run(kernel, "import sys; sys.stderr.flush()")[1]
    assert "jail: denied execve /usr/bin/perl" in err
    # A program that captures its child's stderr gets the line there instead.
    assert "captured -9 b'' jail: denied execve /usr/bin/perl" in out


def test_writes_outside_the_allowed_dirs_fail(kernel: BlockingKernelClient) -> None:
    # /run/lock is world-writable in the image: only the jail stands in the way.
    out, err, reply = run(kernel, (
        "import os\n"
        "open('/home/work/ok.txt', 'w').write('fine')\n"
        "try:\n    open('/run/lock/escape', 'w')\nexcept PermissionError as e:\n    print('refused', e.errno)"))
    assert reply["status"] == "ok", err
    assert "refused 13" in out


def test_interrupt_still_works_under_the_jail(managed: Any) -> None:
    km, kc = managed
    run(kc, "x = 5")
    msg_id = kc.execute("import time; print('sleeping', flush=True); time.sleep(60)")
    while True:  # interrupt once the cell is about to block
        m = kc.get_iopub_msg(timeout=30)
        if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream":
            break
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=5)
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
    out, _, _ = run(kc, "print(x)")
    assert out.strip() == "5"


def _user(cluster: Cluster, name: str) -> str:
    r = cluster.api("POST", "users", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_only_admins_loosen_a_policy(cluster: Cluster) -> None:
    bob = _user(cluster, "bob-jail")
    for overrides, code in (({"network": "on"}, "forbidden"), ({"writable+": ["/opt"]}, "forbidden"),
                            ({"max_procs": 100000}, "forbidden"), ({"no_such_key": 1}, "bad_policy"),
                            ({"network": "sideways"}, "bad_policy")):
        r = cluster.api("POST", "kernels", token=bob, json={"image": IMAGE, "jail": overrides})
        assert r.status_code in (400, 403) and r.json()["error"] == code, (overrides, r.text)
        assert "jail" in r.json()["message"]
    assert not [k for k in cluster.kernel_rows()]  # refused requests leave no row


def _policy_of(cluster: Cluster, kernel: dict[str, Any]) -> dict[str, Any]:
    kc = BlockingKernelClient()
    kc.load_connection_info({**kernel["connection"], "key": kernel["connection"]["key"].encode()})
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        out, err, _ = run(kc, "print(open('/etc/jail.json').read())")
        return json.loads(out)
    finally:
        kc.stop_channels()


def test_per_kernel_policies_reach_the_jail(cluster: Cluster) -> None:
    carol = _user(cluster, "carol-jail")
    tight = json_of(cluster.api("POST", "kernels", token=carol, json={"image": IMAGE, "jail": {"max_procs": 8}}))
    loose = json_of(cluster.api("POST", "kernels", json={"image": IMAGE, "jail": {"network": "on"}}))
    try:
        assert tight["status"] == loose["status"] == "RUNNING"
        assert _policy_of(cluster, tight)["max_procs"] == 8        # a user may tighten
        assert _policy_of(cluster, loose)["network"] == "on"       # an admin may loosen
    finally:
        assert cluster.api("DELETE", f"kernels/{tight['id']}", token=carol).status_code == 204
        assert cluster.api("DELETE", f"kernels/{loose['id']}").status_code == 204


def test_pip_install_user_into_home(kernel: BlockingKernelClient) -> None:
    """`pip install --user` writes beneath /home/work, which the default policy allows."""
    out, err, reply = run(kernel, (
        "import base64, hashlib, os, subprocess, sys, zipfile\n"
        "files = {'hello_jail.py': b'GREETING = \"hi from a user package\"\\n',\n"
        "         'hello_jail-1.0.dist-info/METADATA': b'Metadata-Version: 2.1\\nName: hello-jail\\nVersion: 1.0\\n',\n"
        "         'hello_jail-1.0.dist-info/WHEEL': b'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n'}\n"
        "rec = lambda d: 'sha256=' + base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()\n"
        "record = ''.join(f'{n},{rec(d)},{len(d)}\\n' for n, d in files.items()) + 'hello_jail-1.0.dist-info/RECORD,,\\n'\n"
        "whl = '/home/work/hello_jail-1.0-py3-none-any.whl'\n"
        "with zipfile.ZipFile(whl, 'w') as z:\n"
        "    for n, d in files.items(): z.writestr(n, d)\n"
        "    z.writestr('hello_jail-1.0.dist-info/RECORD', record)\n"
        "r = subprocess.run([sys.executable, '-m', 'pip', 'install', '--user', '--no-index', '--quiet', whl],\n"
        "                   capture_output=True, text=True)\n"
        "print('pip', r.returncode, r.stderr.strip()[-300:])\n"
        "import site, importlib; importlib.invalidate_caches()\n"
        "sys.path.append(site.getusersitepackages())\n"
        "import hello_jail; print(hello_jail.GREETING, hello_jail.__file__.startswith('/home/work/.local/'))"))
    assert reply["status"] == "ok", err
    assert out.splitlines()[0].startswith("pip 0"), out
    assert "hi from a user package True" in out


def test_missing_landlock_refuses_to_run(docker_engine: None, tmp_path: Any) -> None:
    """Where the host can't give Landlock, a kernel whose policy requires it does not start."""
    import docker

    # A seccomp profile that makes Landlock look absent (ENOSYS), everything else allowed.
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{
        "names": ["landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"],
        "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}
    client = docker.from_env()

    def start(policy_overrides: dict[str, Any]) -> tuple[int, str]:
        from jupyter_backendai.jail.policy import policy_for_image

        pol = tmp_path / "jail.json"
        pol.write_text(policy_for_image(IMAGE, policy_overrides).to_json())
        pol.chmod(0o644)
        c = client.containers.run(IMAGE, ["/opt/kernel/bin/python", "-c", "print('kernel ran')"], detach=True,
                                  security_opt=[f"seccomp={json.dumps(profile)}", "no-new-privileges"],
                                  cap_drop=["ALL"], volumes={str(pol): {"bind": "/etc/jail.json", "mode": "ro"}})
        try:
            code = c.wait(timeout=60)["StatusCode"]
            return code, c.logs().decode()
        finally:
            c.remove(force=True)

    code, logs = start({})
    assert code == 125 and "kernel ran" not in logs, logs
    assert "Landlock" in logs and len(logs.strip().splitlines()) == 1, logs   # one clear line
    # "listen" is itself built on Landlock, so it refuses too; an admin's explicit choice of
    # best effort with plain network runs, and says so.
    code, logs = start({"landlock": "best_effort"})
    assert code == 125 and "needs Landlock" in logs, logs
    code, logs = start({"landlock": "best_effort", "network": "on"})
    assert code == 0 and "kernel ran" in logs and "NOT confined" in logs, logs
