"""Building kernel images: base, wheelhouse, then ``docker build`` of ``images/<lang>``."""

from __future__ import annotations

import json
from pathlib import Path

from docker import APIClient

from ..jail.policy import policy_for_image
from ..names import LABEL_KERNELSPEC, LABEL_LANG, LABEL_MIN_CPU, LABEL_MIN_MEM, LABEL_UID
from .base import ensure_base_image
from .catalog import ImageSpec, image_spec, languages
from .context import Source, make_context
from .dockerbuild import BuildResult, run_build
from .engine import connect
from .errors import ImageBuildError
from .progress import Progress, as_progress
from .wheelhouse import fill_wheelhouse

SANDBOX_DIR = Path(__file__).resolve().parents[1] / "data" / "sandbox"
#: The wrapper kernel package, copied into images whose kernel is a REPL wrapper.
KERNELS_DIR = Path(__file__).resolve().parents[1] / "kernels"
JAIL_SOURCES = ("jail.c", "Makefile")
REQUIRED_LABELS = (LABEL_LANG, LABEL_UID, LABEL_MIN_CPU, LABEL_MIN_MEM, LABEL_KERNELSPEC)


def _context_for(spec: ImageSpec, wheelhouse: Path | None) -> bytes:
    """Dockerfile, requirements and wheelhouse; always the same files, so COPY can cache."""
    entries: dict[str, Source] = {"Dockerfile": spec.dockerfile}
    if spec.requirements:
        entries["requirements.txt"] = spec.requirements
    if wheelhouse is not None:
        entries["wheelhouse"] = wheelhouse
    # The jail's source (compiled in the image's build stage) and the image's default policy.
    for name in JAIL_SOURCES:
        entries[f"jail-src/{name}"] = SANDBOX_DIR / name
    entries["jail.json"] = policy_for_image(spec.tag).to_json().encode()
    # The wrapper kernel (unused by images that don't COPY it; unused files never bust a cache).
    entries["kernels"] = KERNELS_DIR
    # An image folder may carry extra files (scripts, configs) its Dockerfile COPYs.
    for path in sorted(spec.folder.iterdir()):
        if path.name not in ("Dockerfile", "requirements.txt", "image.json") and not path.name.startswith("."):
            entries.setdefault(path.name, path)
    return make_context(entries)


def _check_labels(client: APIClient, spec: ImageSpec) -> None:
    labels = client.inspect_image(spec.tag)["Config"].get("Labels") or {}
    missing = [name for name in REQUIRED_LABELS if name not in labels]
    if missing:
        raise ImageBuildError(f"{spec.tag} lacks labels {', '.join(missing)}: fix images/{spec.lang}/Dockerfile")
    if labels[LABEL_LANG] != spec.lang:
        raise ImageBuildError(f"{spec.tag} has {LABEL_LANG}={labels[LABEL_LANG]!r}, expected {spec.lang!r}")


def build_image(
    lang: str,
    *,
    progress: Progress | bool = True,
    client: APIClient | None = None,
    nocache: bool = False,
    refresh_wheels: bool = False,
    rebuild_base: bool = False,
) -> BuildResult:
    """Build ``backendai/kernel-<lang>:<version>`` and return its tag, id and build log.

    Raises ImageBuildError with a one-line message on any failure.
    """
    show = as_progress(progress)
    spec = image_spec(lang)
    client = client or connect()
    ensure_base_image(client, show, rebuild=rebuild_base)
    wheelhouse = None
    if spec.requirements:
        assert spec.wheel_python
        wheelhouse = fill_wheelhouse(lang, spec.requirements, spec.wheel_python, show,
                                     refresh=refresh_wheels)
    kernelspec = json.dumps(spec.kernelspec(), separators=(",", ":"), sort_keys=True)
    with show.step(f"Building {spec.tag}"):
        result = run_build(client, _context_for(spec, wheelhouse), spec.tag, show,
                           labels={LABEL_KERNELSPEC: kernelspec}, nocache=nocache)
        _check_labels(client, spec)
        if result.steps and result.rebuilt_steps == 0:
            show.skipped("up to date (all steps cached)")
    return result


def build_images(
    langs: list[str] | None = None,
    *,
    progress: Progress | bool = True,
    nocache: bool = False,
    refresh_wheels: bool = False,
    rebuild_base: bool = False,
) -> list[BuildResult]:
    """Build the kernel images of ``langs`` (all in the catalog when None or empty), in order.

    Stops at the first failure with ImageBuildError (one line, for the CLI to print).
    """
    show = as_progress(progress)
    wanted = list(langs) if langs else languages()
    if not wanted:
        raise ImageBuildError("no kernel images defined (images/<lang>/ folders are missing)")
    for lang in wanted:
        image_spec(lang)  # fail on a typo before any slow step
    client = connect()
    results = []
    for i, lang in enumerate(wanted):
        results.append(build_image(lang, progress=show, client=client, nocache=nocache,
                                   refresh_wheels=refresh_wheels,
                                   rebuild_base=rebuild_base and i == 0))
    return results
