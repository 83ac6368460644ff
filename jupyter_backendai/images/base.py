"""The base image every kernel image starts from, made without a registry when need be.

Order: the local ``backendai/base:bookworm``; else a Debian root image (local, pulled, or
made with debootstrap from the host's mirror and ``docker import``ed) plus a small Dockerfile
adding what every kernel needs (ca-certificates, tini, user ``work`` uid 1000).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import docker
from docker import APIClient

from ..names import BASE_IMAGE
from . import aptsources
from .context import make_context
from .dockerbuild import run_build
from .engine import image_id
from .errors import ImageBuildError
from .progress import Progress

SUITE = "bookworm"
#: Registry image used when a registry answers.
PULL_ROOT = "debian:bookworm-slim"
#: Local name of the debootstrapped root file system.
IMPORTED_ROOT = "backendai/debian-rootfs:bookworm"
#: Seconds a pull may take before we give up and debootstrap instead.
PULL_TIMEOUT = 120
KERNEL_UID = 1000

BASE_DOCKERFILE = """\
FROM {root}
ENV LANG=C.UTF-8 LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive
RUN set -e; \\
    if ! command -v tini >/dev/null || [ ! -e /etc/ssl/certs/ca-certificates.crt ]; then \\
      apt-get update; \\
      apt-get install -y --no-install-recommends ca-certificates tini; \\
      rm -rf /var/lib/apt/lists/*; \\
    fi
RUN id -u work >/dev/null 2>&1 || \\
    useradd --uid {uid} --user-group --create-home --home-dir /home/work --shell /bin/bash work
CMD ["/bin/bash"]
"""


def ensure_base_image(client: APIClient, progress: Progress, *, rebuild: bool = False) -> str:
    """Return the id of ``BASE_IMAGE``, making it if the engine does not have it."""
    existing = None if rebuild else image_id(client, BASE_IMAGE)
    if existing:
        progress.note(f"base image {BASE_IMAGE} present")
        return existing
    root = _root_image(client, progress)
    with progress.step(f"Building {BASE_IMAGE} from {root}"):
        dockerfile = BASE_DOCKERFILE.format(root=root, uid=KERNEL_UID).encode()
        result = run_build(client, make_context({"Dockerfile": dockerfile}), BASE_IMAGE, progress)
    return result.image_id


def _root_image(client: APIClient, progress: Progress) -> str:
    """A plain Debian image to build the base on: local, pulled, or debootstrapped."""
    for ref in (IMPORTED_ROOT, PULL_ROOT):
        if image_id(client, ref):
            return ref
    with progress.step(f"Pulling {PULL_ROOT}"):
        pull_error = _try_pull(PULL_ROOT)
        if pull_error is not None:
            progress.skipped(f"failed ({pull_error}); using debootstrap instead")
    if pull_error is None:
        return PULL_ROOT
    debootstrap_import(IMPORTED_ROOT, client, progress)
    return IMPORTED_ROOT


def _try_pull(ref: str) -> str | None:
    """Pull ``ref``; return None on success or a short reason on failure (never raise)."""
    repo, tag = ref.rsplit(":", 1)
    try:
        quick = docker.from_env(timeout=PULL_TIMEOUT).api
        for chunk in quick.pull(repo, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                return " ".join(str(chunk["error"]).split())[:200]
    except Exception as exc:
        reason = getattr(exc, "explanation", None) or str(exc)
        return " ".join(str(reason).split())[:200]
    return None


def _need_debootstrap(progress: Progress) -> str:
    """Path to debootstrap, installing it with apt-get when missing and running as root."""
    found = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if os.path.exists("/usr/sbin/debootstrap") else None
    )
    if found:
        return found
    if os.geteuid() != 0:
        raise ImageBuildError(
            f"no {BASE_IMAGE}, no registry, and debootstrap is missing: "
            "install debootstrap (apt-get install debootstrap) and run again as root"
        )
    with progress.step("Installing debootstrap with apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"]
        if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True)
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                tail = (done.stderr.strip().splitlines() or ["?"])[-1]
                raise ImageBuildError(f"apt-get install debootstrap failed: {tail}")
    return shutil.which("debootstrap") or "/usr/sbin/debootstrap"


def _stream(cmd: list[str], progress: Progress, what: str) -> None:
    """Run ``cmd`` showing its output lines as progress; one-line error on failure."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    last = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip():
            last = line.strip()
            progress.update(last)
    if proc.wait() != 0:
        raise ImageBuildError(f"{what} failed (exit {proc.returncode}): {last[:200]}")


def _unmount_below(root: Path) -> None:
    """Lazily unmount anything a failed debootstrap left mounted inside the root fs."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def debootstrap_import(tag: str, client: APIClient, progress: Progress) -> str:
    """Make a minimal Debian root fs from the host's mirror and import it as image ``tag``."""
    if os.geteuid() != 0:
        raise ImageBuildError(
            f"no {BASE_IMAGE} and no registry; making it with debootstrap needs root"
        )
    tool = _need_debootstrap(progress)
    sources = aptsources.host_sources()
    mirror = aptsources.debian_mirror(sources)
    workdir = Path(tempfile.mkdtemp(prefix="backendai-rootfs-", dir="/var/tmp"))
    rootfs = workdir / "rootfs"
    try:
        with progress.step(f"debootstrap {SUITE} from {mirror} (a few minutes)"):
            _stream([tool, "--variant=minbase", "--include=ca-certificates,tini",
                     SUITE, str(rootfs), mirror], progress, "debootstrap")
        (rootfs / "etc/apt/sources.list").write_text(aptsources.sources_list(SUITE, sources))
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / junk).glob("*"):
                if path.is_file():
                    path.unlink()
        with progress.step(f"Importing root file system as {tag}"):
            return _import_tree(client, rootfs, tag)
    finally:
        _unmount_below(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


def _import_tree(client: APIClient, rootfs: Path, tag: str) -> str:
    """Stream ``tar`` of ``rootfs`` into ``docker import`` without a temporary file."""
    repo, _, version = tag.rpartition(":")
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-c",
         "--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./dev/*", "."],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert tar.stdout is not None
    chunks = iter(lambda: tar.stdout.read(1 << 20), b"")
    try:
        answer = client.import_image_from_data(
            chunks, repository=repo, tag=version,
            changes=['ENV LANG=C.UTF-8', 'CMD ["/bin/bash"]'],
        )
    except Exception as exc:
        tar.kill()
        raise ImageBuildError(f"docker import of the root file system failed: {exc}") from None
    finally:
        tar.stdout.close()
    err = tar.stderr.read().decode(errors="replace").strip() if tar.stderr else ""
    if tar.wait() != 0:
        raise ImageBuildError(f"tar of the root file system failed: {err[-200:]}")
    if '"error' in str(answer):
        raise ImageBuildError(f"docker import of the root file system failed: {str(answer)[:200]}")
    found = image_id(client, tag)
    if not found:
        raise ImageBuildError(f"docker import finished but {tag} is missing")
    return found
