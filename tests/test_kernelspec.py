"""Kernelspecs: installing them where Jupyter looks, and rebuilding them from image labels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from jupyter_backendai.kernelspec import (
    KERNELSPECS_DIR, available_kernelspecs, install_kernelspecs, kernelspec_for_image,
)
from jupyter_backendai.names import LABEL_KERNELSPEC, PROVISIONER_NAME

SOURCE = Path(__file__).resolve().parent.parent / "kernelspecs" / "backendai-python"


@pytest.fixture
def jupyter_env(tmp_path, monkeypatch):
    """A Jupyter that only sees ``tmp_path`` (no user or system kernelspecs)."""
    prefix = tmp_path / "prefix"
    env = {
        "JUPYTER_PATH": str(prefix / "share" / "jupyter"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return prefix, env


def test_shipped_files_are_the_top_level_folder():
    assert "backendai-python" in available_kernelspecs()
    assert (KERNELSPECS_DIR / "backendai-python" / "kernel.json").read_bytes() == (SOURCE / "kernel.json").read_bytes()


def test_install_into_prefix_is_listed(jupyter_env):
    prefix, _ = jupyter_env
    paths = install_kernelspecs(prefix=str(prefix))
    assert len(paths) == len(available_kernelspecs())
    installed = prefix / "share" / "jupyter" / "kernels" / "backendai-python"
    assert str(installed) in paths
    for name in ("kernel.json", "logo-32x32.png", "logo-64x64.png", "logo-svg.svg"):
        assert (installed / name).is_file(), name

    # Listed only if the provisioner named in the spec is registered (entry point).
    specs = KernelSpecManager().get_all_specs()
    assert "backendai-python" in specs
    spec = specs["backendai-python"]["spec"]
    assert spec["display_name"] == "Python 3 (Backend.AI)"
    assert spec["metadata"]["kernel_provisioner"]["provisioner_name"] == PROVISIONER_NAME


def test_jupyter_kernelspec_list_command(jupyter_env):
    prefix, env = jupyter_env
    install_kernelspecs(["backendai-python"], prefix=str(prefix))
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"],
        env={**os.environ, **env}, capture_output=True, text=True, check=True,
    ).stdout
    specs = json.loads(out)["kernelspecs"]
    assert specs["backendai-python"]["spec"]["display_name"] == "Python 3 (Backend.AI)"


def test_install_rejects_unknown_and_conflicting_options(tmp_path):
    with pytest.raises(ValueError, match="unknown kernelspec"):
        install_kernelspecs(["backendai-cobol"], prefix=str(tmp_path))
    with pytest.raises(ValueError, match="at most one"):
        install_kernelspecs(user=True, prefix=str(tmp_path))


def test_kernelspec_for_image_round_trip():
    kernel = json.loads((SOURCE / "kernel.json").read_text())
    labels = {LABEL_KERNELSPEC: json.dumps(kernel, separators=(",", ":")), "other": "x"}
    assert kernelspec_for_image(labels) == kernel

    pinned = kernelspec_for_image(labels, image="sha256:abc")
    assert pinned["metadata"]["kernel_provisioner"]["config"]["image"] == "sha256:abc"
    assert pinned["argv"] == kernel["argv"]


@pytest.mark.parametrize("labels", [{}, {LABEL_KERNELSPEC: "not json"},
                                    {LABEL_KERNELSPEC: '{"display_name": "x", "language": "y"}'}])
def test_kernelspec_for_image_rejects_bad_labels(labels):
    with pytest.raises(ValueError):
        kernelspec_for_image(labels)
