"""Filling a wheelhouse on the host, for the image's Python and platform.

Nothing inside ``docker build`` can reach a package index here (and air-gapped clusters are
the same), so pip downloads binary wheels on the host and the build installs with
``--no-index``. The result is cached and reused while the requirements stay the same.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import ImageBuildError
from .progress import Progress

STAMP = ".requirements.sha256"

#: manylinux tags Debian bookworm (glibc 2.36) can run, newest first.
_MANYLINUX = ("manylinux_2_28", "manylinux_2_17", "manylinux2014")


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/jupyter-backendai`` (``~/.cache/...`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jupyter-backendai"


def platforms(machine: str | None = None) -> list[str]:
    """pip ``--platform`` values for the host's architecture (images match the host)."""
    machine = (machine or platform.machine()).lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return [f"{tag}_{arch}" for tag in _MANYLINUX]


def _fingerprint(requirements: Path, python: str, plats: list[str]) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"\0{python}\0{','.join(plats)}".encode())
    return digest.hexdigest()


def fill_wheelhouse(
    lang: str, requirements: Path, python: str, progress: Progress, *, refresh: bool = False,
    directory: Path | None = None,
) -> Path:
    """Return a directory holding wheels for ``requirements``, downloading only when needed."""
    target = directory or cache_root() / "wheelhouse" / lang
    plats = platforms()
    stamp = _fingerprint(requirements, python, plats)
    stamp_file = target / STAMP
    if not refresh and stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        progress.note(f"wheelhouse for {lang} up to date ({target})")
        return target
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    abi = "cp" + python.replace(".", "")
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
           "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
           "--abi", abi, "--abi", "abi3", "--abi", "none", "-d", str(staging),
           "-r", str(requirements)]
    for plat in plats:
        cmd += ["--platform", plat]
    with progress.step(f"Downloading wheels for {lang} (Python {python}, {plats[0]})"):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            if line.strip():
                lines.append(line.strip())
                progress.update(line)
        if proc.wait() != 0:
            shutil.rmtree(staging, ignore_errors=True)
            errors = [l for l in lines if l.startswith("ERROR")] or lines[-1:] or ["?"]
            raise ImageBuildError(f"pip download for {lang} failed: {errors[0][:300]}")
    (staging / STAMP).write_text(stamp + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
