# SPDX-License-Identifier: LGPL-3.0-or-later
"""Language profiles: data (``profiles/<name>.json``), not code.

A profile names the command that runs the driver (given its channel's two file descriptors
in BACKENDAI_DRIVER_CMD_FD / _EVENT_FD), the driver file, the ``language_info`` of kernel_info_reply and the per-cell output cap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROFILES_DIR = HERE / "profiles"
DRIVERS_DIR = HERE / "drivers"


class ProfileError(ValueError):
    """A missing or malformed profile."""


@dataclass(frozen=True)
class Profile:
    name: str
    command: list[str]
    driver: str
    language_info: dict[str, Any]
    implementation: str = "backendai-wrapper"
    banner: str = ""
    #: bytes of stdout+stderr shown per cell before the rest is dropped with a notice
    output_limit: int = 1_000_000
    #: seconds a cell may keep running after an interrupt before the driver is restarted
    interrupt_grace: float = 2.0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def driver_path(self) -> Path:
        return DRIVERS_DIR / self.driver

    def argv(self) -> list[str]:
        return [*self.command, str(self.driver_path)]


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.json"))


def load_profile(name: str) -> Profile:
    path = PROFILES_DIR / f"{name}.json"
    if not path.is_file():
        raise ProfileError(f"no language profile {name!r} (known: {', '.join(available_profiles()) or 'none'})")
    try:
        data = json.loads(path.read_text())
        return Profile(name=name, **data)
    except (ValueError, TypeError) as e:
        raise ProfileError(f"bad profile {path}: {e}") from None
