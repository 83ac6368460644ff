"""The runtime contract: the one interface the agent drives, whatever runs the kernels.

Every method is called by the agent's event loop; implementations keep blocking work (Docker
SDK calls, process waits) off that loop. Failure contract: ``start`` either returns a
running, labelled kernel or raises with nothing left behind (no container, no process); the
agent owns the host ports and gives them back itself.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


class RuntimeError_(Exception):
    """A runtime could not do what was asked; the message is one line for the user."""


@dataclass
class ImageInfo:
    """One entry of an agent's image catalog, read from the image's labels."""

    name: str
    lang: str
    kernelspec: dict[str, Any]
    min_cpu: float = 1.0
    min_mem: int = 256 * 2**20
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class KernelLaunch:
    """Everything a runtime needs to start one kernel."""

    name: str                 # the runtime-level name; stays with the kernel across hand-out
    image: str
    argv: list[str]           # may contain "{connection_file}"
    env: dict[str, str]
    cpu: float
    mem: int                  # bytes
    ports: list[int]          # host ports, in PORT_NAMES order
    key: str
    kernel_dir: Path          # host dir for this kernel's connection file
    jail_policy: str = ""     # JSON policy for the image's jail (empty: the image's default)
    pids: int = 512


@dataclass
class RuntimeKernel:
    """A kernel a runtime runs: enough to reach it, stop it, and re-adopt it."""

    name: str
    image: str
    ref: str                  # container id or pid
    connection: dict[str, Any]  # what a client uses: ip, ports, key, transport, scheme
    cpu: float
    mem: int

    @property
    def ports(self) -> list[int]:
        return [int(self.connection[p]) for p in PORT_NAMES]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "image": self.image, "ref": self.ref, "connection": self.connection,
                "cpu": self.cpu, "mem": self.mem}


def connection_info(ports: list[int], key: str, ip: str) -> dict[str, Any]:
    info: dict[str, Any] = dict(zip(PORT_NAMES, ports))
    info.update(ip=ip, key=key, transport="tcp", signature_scheme="hmac-sha256")
    return info


def write_connection_file(path: Path, info: dict[str, Any], uid: int | None = None) -> None:
    """Write the file the kernel reads; readable only by the kernel's user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
    if uid is not None and os.geteuid() == 0:
        os.chown(path, uid, uid)


def read_connection_file(path: Path) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


ExitCallback = Callable[[str, int], None]


class Runtime(ABC):
    """Starts, signals, lists and destroys kernels on this host."""

    kind: str = "?"

    def __init__(self, *, kernels_dir: Path, agent_id: str, advertise_ip: str = "127.0.0.1", **_: Any):
        self.kernels_dir = Path(kernels_dir)
        self.agent_id = agent_id
        self.advertise_ip = advertise_ip

    @abstractmethod
    async def images(self) -> list[ImageInfo]:
        """The catalog this host can run; called at registration and on refresh."""

    @abstractmethod
    async def start(self, launch: KernelLaunch) -> RuntimeKernel:
        """Start a kernel. Raises RuntimeError_ and leaves nothing behind on failure."""

    @abstractmethod
    async def destroy(self, name: str) -> None:
        """Stop and remove a kernel and its files; idempotent (an unknown name is fine)."""

    @abstractmethod
    async def signal(self, name: str, signum: int) -> None:
        """Deliver a signal to the kernel process (the interrupt fallback)."""

    @abstractmethod
    async def adopt(self) -> list[RuntimeKernel]:
        """Running kernels this agent started earlier (after an agent restart)."""

    @abstractmethod
    def watch(self, on_exit: ExitCallback) -> None:
        """Call ``on_exit(name, exit_code)`` on the loop whenever one of our kernels exits."""

    async def last_output(self, name: str) -> str:
        """The kernel's last line of output (why it died, e.g. a failed exec), or ""."""
        return ""

    async def close(self) -> None:
        """Stop watching; leaves kernels running (they outlive the agent process)."""
