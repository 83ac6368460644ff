"""Installing the Backend.AI kernelspecs, and turning an image's labels back into one.

The files live in the repository's ``kernelspecs/`` folder (the source of truth), reached
through ``jupyter_backendai/data/kernelspecs`` so that editable installs and built wheels
(which carry a copy) find them the same way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

from .names import KERNELSPEC_PREFIX, LABEL_KERNELSPEC, PROVISIONER_NAME

KERNELSPECS_DIR = Path(__file__).resolve().parent / "data" / "kernelspecs"


def available_kernelspecs(root: Path = KERNELSPECS_DIR) -> list[str]:
    """Names of the kernelspecs this package ships (``backendai-<lang>``), sorted."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.name.startswith(KERNELSPEC_PREFIX) and (p / "kernel.json").is_file())


def install_kernelspecs(
    names: list[str] | None = None,
    *,
    user: bool = False,
    sys_prefix: bool = False,
    prefix: str | None = None,
) -> list[str]:
    """Install the named kernelspecs (all shipped ones when None); return their install paths.

    ``user`` installs for the current user, ``sys_prefix`` into ``sys.prefix`` (the active
    environment), ``prefix`` into ``<prefix>/share/jupyter/kernels``; none means system-wide.
    """
    if sum(bool(x) for x in (user, sys_prefix, prefix)) > 1:
        raise ValueError("choose at most one of user, sys_prefix, prefix")
    shipped = available_kernelspecs()
    wanted = list(names) if names else shipped
    unknown = [n for n in wanted if n not in shipped]
    if unknown:
        raise ValueError(f"unknown kernelspec(s) {', '.join(unknown)} (shipped: {', '.join(shipped) or 'none'})")
    if sys_prefix:
        prefix = sys.prefix
    manager = KernelSpecManager()
    return [
        manager.install_kernel_spec(str(KERNELSPECS_DIR / name), kernel_name=name,
                                    user=user, prefix=prefix)
        for name in wanted
    ]


def kernelspec_for_image(labels: dict, *, image: str | None = None) -> dict:
    """The kernel.json dict an image declares in its ``ai.backend.kernelspec`` label.

    ``image`` (e.g. the tag or id the agent actually has) replaces the provisioner's
    ``config.image`` so the kernelspec starts exactly that image. Raises ValueError when the
    label is missing or not a usable kernelspec.
    """
    raw = (labels or {}).get(LABEL_KERNELSPEC)
    if not raw:
        raise ValueError(f"image has no {LABEL_KERNELSPEC} label")
    try:
        spec = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{LABEL_KERNELSPEC} label is not JSON: {exc}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("argv"), list) or not spec["argv"]:
        raise ValueError(f"{LABEL_KERNELSPEC} label lacks a non-empty argv")
    for key in ("display_name", "language"):
        if not isinstance(spec.get(key), str):
            raise ValueError(f"{LABEL_KERNELSPEC} label lacks {key}")
    provisioner = spec.setdefault("metadata", {}).setdefault("kernel_provisioner", {})
    provisioner.setdefault("provisioner_name", PROVISIONER_NAME)
    if image is not None:
        provisioner.setdefault("config", {})["image"] = image
    return spec
