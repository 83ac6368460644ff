"""Jail policies from Python: defaults, overrides, the file, and the jail reading what Python wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_backendai.jail import Policy, PolicyError, policy_for_image
from jupyter_backendai.jail.policy import image_lang

ROOT = Path(__file__).resolve().parents[1]


def test_image_defaults_and_overrides() -> None:
    assert image_lang("backendai/kernel-python:3.11") == "python" and image_lang("python") == "python"
    p = policy_for_image("backendai/kernel-python:3.11")
    assert p.image == "python" and p.network == "listen" and p.landlock == "required"
    assert "/home/work" in p.writable and "/tmp" in p.writable and "/opt/kernel/bin/python" in p.exec_allow
    q = p.merge({"network": False, "max_procs": 32, "writable+": ["/data"], "exec_allow-": ["/usr/bin/git"]})
    assert q.network == "off" and q.max_procs == 32 and q.writable[-1] == "/data"
    assert "/usr/bin/git" not in q.exec_allow and "/usr/bin/git" in p.exec_allow  # p is untouched
    assert p.merge({"exec_allow": ["*"]}).exec_allow == ["*"]
    other = policy_for_image("backendai/kernel-julia:1.10")
    assert other.image == "julia" and other.writable == p.writable


@pytest.mark.parametrize("override", [{"netwrk": "on"}, {"network": "maybe"}, {"max_procs": 0}, {"max_execs": -1},
                                      {"writable": ["relative/dir"]}, {"max_threads": True}, {"landlock": "no"},
                                      {"image+": ["x"]}])
def test_bad_overrides_are_refused(override: dict) -> None:
    with pytest.raises(PolicyError):
        policy_for_image("python", override)


def test_json_round_trip_and_write(tmp_path: Path) -> None:
    p = policy_for_image("python", {"network": "on"})
    d = json.loads(p.to_json())
    assert d["version"] == 1 and d["network"] == "on"
    assert Policy.from_json(p.to_json()) == p
    out = p.write(tmp_path / "jail.json")
    assert out.stat().st_mode & 0o777 == 0o644 and json.loads(out.read_text()) == d
    with pytest.raises(PolicyError):
        Policy.from_dict({"version": 2})


def test_shipped_default_is_the_generated_one() -> None:
    shipped = (ROOT / "sandbox" / "policies" / "default.json").read_text()
    assert shipped == policy_for_image("python").to_json(), \
        "regenerate with: python -m jupyter_backendai.jail > sandbox/policies/default.json"
    r = subprocess.run([sys.executable, "-m", "jupyter_backendai.jail", "--set", "max_procs=9", "--set", 'network="off"'],
                       capture_output=True, text=True, check=True)
    assert json.loads(r.stdout)["max_procs"] == 9 and json.loads(r.stdout)["network"] == "off"


@pytest.mark.skipif(sys.platform != "linux", reason="the jail is Linux only")
def test_jail_reads_what_python_writes(tmp_path: Path) -> None:
    subprocess.run(["make", "-s", "-C", str(ROOT / "sandbox")], check=True, capture_output=True)
    jail = ROOT / "sandbox" / "build" / "jail"
    for overrides in ({}, {"network": "off", "max_execs": 5, "exec_allow": ["*"]}, {"network": "on"}):
        path = policy_for_image("python", overrides).write(tmp_path / "p.json")
        r = subprocess.run([str(jail), "--print-filter", "--policy", str(path)], capture_output=True, text=True)
        assert r.returncode == 0 and int(r.stdout) > 10, r.stderr
