"""The catalog of kernel images: one ``images/<lang>/`` folder per language.

A language folder holds a ``Dockerfile``, an ``image.json`` (``version``, ``kernelspec``, and
``wheel_python`` when a ``requirements.txt`` names Python wheels), and the kernelspec lives in
``kernelspecs/<kernelspec>/kernel.json``. Adding a language means adding those folders only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..names import IMAGE_PREFIX, KERNELSPEC_PREFIX
from .errors import ImageBuildError

_DATA = Path(__file__).resolve().parent.parent / "data"
#: Both are symlinks to the repository's top-level folders (the sources of truth); a built
#: wheel carries copies.
IMAGES_DIR = _DATA / "images"
KERNELSPECS_DIR = _DATA / "kernelspecs"


@dataclass(frozen=True)
class ImageSpec:
    """Everything needed to build one language's kernel image."""

    lang: str
    version: str
    folder: Path
    kernelspec_dir: Path
    wheel_python: str | None = None

    @property
    def tag(self) -> str:
        """``backendai/kernel-<lang>:<version>``."""
        return f"{IMAGE_PREFIX}{self.lang}:{self.version}"

    @property
    def dockerfile(self) -> Path:
        return self.folder / "Dockerfile"

    @property
    def requirements(self) -> Path | None:
        """Python wheels to put in the image, if the language needs any."""
        path = self.folder / "requirements.txt"
        return path if path.is_file() else None

    def kernelspec(self) -> dict:
        """The kernel.json this image carries as its ``ai.backend.kernelspec`` label."""
        return json.loads((self.kernelspec_dir / "kernel.json").read_text())


def languages(root: Path = IMAGES_DIR) -> list[str]:
    """Languages with an image folder, sorted."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "Dockerfile").is_file()
                  and (p / "image.json").is_file())


def image_spec(lang: str, root: Path = IMAGES_DIR, kernelspecs: Path = KERNELSPECS_DIR) -> ImageSpec:
    """Read ``images/<lang>/image.json`` and check it against its kernelspec."""
    folder = root / lang
    if lang not in languages(root):
        known = ", ".join(languages(root)) or "none"
        raise ImageBuildError(f"no kernel image for language {lang!r} (known: {known})")
    try:
        meta = json.loads((folder / "image.json").read_text())
        spec = ImageSpec(
            lang=lang, version=str(meta["version"]), folder=folder,
            kernelspec_dir=kernelspecs / meta.get("kernelspec", f"{KERNELSPEC_PREFIX}{lang}"),
            wheel_python=meta.get("wheel_python"),
        )
        kernel = spec.kernelspec()
    except (OSError, ValueError, KeyError) as exc:
        raise ImageBuildError(f"bad image definition for {lang!r}: {type(exc).__name__}: {exc}") from None
    declared = kernel.get("metadata", {}).get("kernel_provisioner", {}).get("config", {}).get("image")
    if declared != spec.tag:
        raise ImageBuildError(
            f"{spec.kernelspec_dir / 'kernel.json'} names image {declared!r}, but images/{lang} builds {spec.tag}"
        )
    if spec.requirements and not spec.wheel_python:
        raise ImageBuildError(f"images/{lang}/image.json needs wheel_python for requirements.txt")
    return spec
