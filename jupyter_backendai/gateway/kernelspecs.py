# SPDX-License-Identifier: LGPL-3.0-or-later
"""Kernelspecs from the manager's image catalog: what the agents can run right now.

Each image declares its kernel.json in a label; logos come from the kernelspec folders this
package ships (``backendai-<lang>``), so JupyterLab's launcher shows them. The catalog is
fetched at most every ``refresh_seconds`` (jupyter_server asks for specs on every listing).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel
from traitlets import Dict, Float

from ..client import ManagerAddress, ManagerClient, ManagerError
from ..kernelspec import KERNELSPECS_DIR, kernelspec_for_image


class BackendAIKernelSpecManager(KernelSpecManager):  # type: ignore[misc]
    refresh_seconds = Float(10.0, config=True, help="How long the image catalog is reused.")
    aliases = Dict({"python3": "backendai-python"}, config=True,
                   help="Kernel names clients ask for that mean one of ours (a kernel start only).")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._specs: dict[str, dict[str, Any]] = {}
        self._fetched = 0.0

    async def refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._fetched < self.refresh_seconds:
            return
        try:
            images = (await ManagerClient(ManagerAddress.discover(), request_timeout=30).request("GET", "images"))["images"]
        except ManagerError as e:
            self.log.warning("Backend.AI image catalog unavailable: %s", e)
            return
        specs: dict[str, dict[str, Any]] = {}
        for img in images:
            try:
                spec = kernelspec_for_image(img.get("labels") or {}, image=img["name"])
            except ValueError as e:
                self.log.debug("image %s has no usable kernelspec: %s", img["name"], e)
                continue
            specs.setdefault(_name_for(img["name"]), spec)
        self._specs, self._fetched = specs, time.monotonic()

    def _resource_dir(self, name: str) -> str:
        d = KERNELSPECS_DIR / name
        return str(d) if d.is_dir() else ""

    # jupyter_client's API (sync); jupyter_server's kernelspec handlers call these.
    def find_kernel_specs(self) -> dict[str, str]:
        return {name: self._resource_dir(name) for name in self._specs}

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        spec = self._specs.get(kernel_name)
        if spec is None:
            raise NoSuchKernel(kernel_name)
        return KernelSpec(resource_dir=self._resource_dir(kernel_name), **spec)

    def get_all_specs(self) -> dict[str, dict[str, Any]]:
        return {name: {"resource_dir": self._resource_dir(name), "spec": self.get_kernel_spec(name).to_dict()}
                for name in self._specs}

    async def refresh_forever(self) -> None:
        while True:
            await self.refresh(force=True)
            await asyncio.sleep(self.refresh_seconds)


def _name_for(image: str) -> str:
    """``backendai/kernel-python:3.11`` -> ``backendai-python`` (the shipped kernelspec names)."""
    from ..jail.policy import image_lang

    return f"backendai-{image_lang(image)}"
