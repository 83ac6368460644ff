"""The python kernel image: built through the package API, checked against the agent contract."""

from __future__ import annotations

import json
import os
from pathlib import Path

import docker
import pytest
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from jupyter_backendai.images import build_image, image_spec, languages
from jupyter_backendai.images.context import make_context
from jupyter_backendai.kernelspec import kernelspec_for_image
from jupyter_backendai.names import (
    CONTAINER_CONNECTION_FILE, LABEL_KERNELSPEC, LABEL_LANG, LABEL_MIN_CPU, LABEL_MIN_MEM, LABEL_UID,
)

ROOT = Path(__file__).resolve().parent.parent
TAG = "backendai/kernel-python:3.11"
KERNEL_JSON = json.loads((ROOT / "kernelspecs" / "backendai-python" / "kernel.json").read_text())


def test_catalog_has_python():
    assert "python" in languages()
    spec = image_spec("python")
    assert spec.tag == TAG
    assert spec.kernelspec() == KERNEL_JSON


def test_context_is_byte_stable(tmp_path):
    (tmp_path / "a").write_text("x")
    first = make_context({"Dockerfile": b"FROM scratch\n", "dir": tmp_path})
    os.utime(tmp_path / "a", (1, 1))
    assert make_context({"dir": tmp_path, "Dockerfile": b"FROM scratch\n"}) == first


@pytest.fixture(scope="module")
def engine():
    return docker.from_env()


@pytest.fixture(scope="module")
def built(engine):
    """Build (or reuse, via the layer cache) the image through the package API."""
    return build_image("python", progress=False)


def run(engine, *cmd: str) -> str:
    return engine.containers.run(TAG, list(cmd), remove=True).decode().strip()


@pytest.mark.docker
def test_build_tags_image(engine, built):
    assert built.tag == TAG
    assert engine.images.get(TAG).id == built.image_id


@pytest.mark.docker
def test_labels(engine, built):
    labels = engine.images.get(TAG).labels
    assert labels[LABEL_LANG] == "python"
    assert labels[LABEL_UID] == "1000"
    assert labels[LABEL_MIN_CPU] == "1"
    assert labels[LABEL_MIN_MEM] == "256m"
    assert "\n" not in labels[LABEL_KERNELSPEC]
    assert json.loads(labels[LABEL_KERNELSPEC]) == KERNEL_JSON
    assert kernelspec_for_image(labels) == KERNEL_JSON


@pytest.mark.docker
def test_non_root_user_and_tini(engine, built):
    config = engine.images.get(TAG).attrs["Config"]
    assert config["User"] == "work"
    assert config["WorkingDir"] == "/home/work"
    assert config["Entrypoint"] == ["/usr/bin/tini", "-g", "--", "/usr/local/bin/jail", "--policy", "/etc/jail.json", "--"]
    assert run(engine, "sh", "-c", 'echo "$(id -u) $(id -un) $HOME $(pwd)"') == "1000 work /home/work /home/work"
    # The kernel must not be PID 1: tini is.
    assert run(engine, "cat", "/proc/1/comm") == "tini"


@pytest.mark.docker
def test_kernel_packages_import(engine, built):
    out = run(engine, "/opt/kernel/bin/python", "-c",
              "import ipykernel, numpy, pandas, matplotlib; print(ipykernel.__version__)")
    major, minor = (int(x) for x in out.split(".")[:2])
    assert (major, minor) >= (6, 29)


@pytest.mark.docker
def test_kernel_runs_from_kernelspec_argv(engine, built, tmp_path):
    """Start the container the way the agent does and execute a cell over ZeroMQ."""
    conn_file, info = write_connection_file(str(tmp_path / "connection.json"), ip="127.0.0.1")
    os.chown(conn_file, 1000, 1000)
    argv = [CONTAINER_CONNECTION_FILE if a == "{connection_file}" else a for a in KERNEL_JSON["argv"]]
    container = engine.containers.run(
        TAG, argv, detach=True, network_mode="host",
        volumes={conn_file: {"bind": CONTAINER_CONNECTION_FILE, "mode": "ro"}},
    )
    try:
        client = BlockingKernelClient()
        client.load_connection_info(info)
        client.start_channels()
        client.wait_for_ready(timeout=60)
        seen: list[str] = []
        reply = client.execute_interactive(
            "import os; print(os.getuid(), 6 * 7)", timeout=30,
            output_hook=lambda msg: seen.append(msg["content"].get("text", "")),
        )
        client.stop_channels()
        assert reply["content"]["status"] == "ok"
        assert "1000 42" in "".join(seen)
        container.stop(timeout=20)  # SIGTERM must reach the kernel through tini
        container.reload()
        assert container.attrs["State"]["ExitCode"] != 137, "needed SIGKILL: SIGTERM was lost"
    finally:
        container.remove(force=True)


@pytest.mark.docker
def test_second_build_is_a_cache_hit(built):
    again = build_image("python", progress=False)
    assert again.image_id == built.image_id
    assert again.steps > 0
    assert again.rebuilt_steps == 0, "\n".join(again.log)
    # Every step but the FROMs (the jail's build stage and the image itself) answered "Using cache".
    froms = sum(1 for line in again.log if line.startswith("Step ") and " : FROM " in line)
    assert froms == 2 and again.cached_steps == again.steps - froms, "\n".join(again.log)
