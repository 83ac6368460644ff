"""The process runtime: kernels as host processes, for machines with no Docker engine.

Same contract as the Docker runtime, no isolation: it exists so that `jupyter backendai up`
works on a laptop, on Binder and in CI without Docker, and says so on start. Only Python
kernels are offered, with the host's own interpreter standing in for the image's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from ... import names
from .base import (
    ExitCallback,
    ImageInfo,
    KernelLaunch,
    PORT_NAMES,
    Runtime,
    RuntimeError_,
    RuntimeKernel,
    connection_info,
    read_connection_file,
    write_connection_file,
)

log = logging.getLogger(__name__)

KERNELSPECS = Path(__file__).resolve().parents[2] / "data" / "kernelspecs"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class ProcessRuntime(Runtime):
    kind = "process"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._adopted: dict[str, int] = {}
        self._on_exit: ExitCallback | None = None
        self._poller: asyncio.Task[None] | None = None

    async def images(self) -> list[ImageInfo]:
        spec_file = KERNELSPECS / "backendai-python" / "kernel.json"
        spec = json.loads(spec_file.read_text())
        image = spec["metadata"]["kernel_provisioner"]["config"]["image"]
        return [ImageInfo(name=image, lang="python", kernelspec=spec, min_cpu=0.5, min_mem=128 * 2**20,
                          labels={names.LABEL_LANG: "python"})]

    def _argv(self, launch: KernelLaunch, conn_path: Path) -> list[str]:
        argv = [a.replace("{connection_file}", str(conn_path)) for a in launch.argv]
        if Path(argv[0]).name.startswith("python"):
            argv[0] = sys.executable  # the image's interpreter does not exist on the host
        return argv

    async def start(self, launch: KernelLaunch) -> RuntimeKernel:
        if not launch.image.startswith(names.IMAGE_PREFIX + "python"):
            raise RuntimeError_(f"the process runtime runs Python kernels only, not {launch.image}")
        conn_path = launch.kernel_dir / "connection.json"
        write_connection_file(conn_path, connection_info(launch.ports, launch.key, self.advertise_ip))
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        env.update(launch.env)
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._argv(launch, conn_path), env=env, cwd=str(launch.kernel_dir),
                stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
            )
        except OSError as e:
            shutil.rmtree(launch.kernel_dir, ignore_errors=True)
            raise RuntimeError_(f"kernel process failed to start: {e}") from e
        (launch.kernel_dir / "pid").write_text(str(proc.pid))
        (launch.kernel_dir / "meta.json").write_text(json.dumps({"image": launch.image, "cpu": launch.cpu, "mem": launch.mem}))
        self._procs[launch.name] = proc
        asyncio.create_task(self._reap(launch.name, proc))
        return RuntimeKernel(name=launch.name, image=launch.image, ref=str(proc.pid),
                             connection=connection_info(launch.ports, launch.key, self.advertise_ip),
                             cpu=launch.cpu, mem=launch.mem)

    async def _reap(self, name: str, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self._procs.get(name) is proc:
            del self._procs[name]
            if self._on_exit:
                self._on_exit(name, code)

    def _pid(self, name: str) -> int | None:
        if name in self._procs:
            return self._procs[name].pid
        return self._adopted.get(name)

    async def destroy(self, name: str) -> None:
        pid = self._pid(name)
        proc = self._procs.pop(name, None)
        self._adopted.pop(name, None)
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if proc is not None:
                await proc.wait()
        shutil.rmtree(self.kernels_dir / name, ignore_errors=True)

    async def signal(self, name: str, signum: int) -> None:
        pid = self._pid(name)
        if pid is None:
            raise RuntimeError_(f"kernel {name} is not running")
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            raise RuntimeError_(f"kernel {name} is not running") from None

    async def adopt(self) -> list[RuntimeKernel]:
        out: list[RuntimeKernel] = []
        if not self.kernels_dir.exists():
            return out
        for d in self.kernels_dir.iterdir():
            try:
                pid = int((d / "pid").read_text())
                info = read_connection_file(d / "connection.json")
                meta = json.loads((d / "meta.json").read_text())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                shutil.rmtree(d, ignore_errors=True)
                continue
            if not _alive(pid) or str(d / "connection.json").encode() not in cmdline:
                shutil.rmtree(d, ignore_errors=True)
                continue
            self._adopted[d.name] = pid
            out.append(RuntimeKernel(name=d.name, image=meta["image"], ref=str(pid),
                                     connection=connection_info([int(info[p]) for p in PORT_NAMES], info["key"], self.advertise_ip),
                                     cpu=meta["cpu"], mem=meta["mem"]))
        return out

    def watch(self, on_exit: ExitCallback) -> None:
        self._on_exit = on_exit
        self._poller = asyncio.create_task(self._poll_adopted())

    async def _poll_adopted(self) -> None:
        # Adopted processes are not our children, so nothing tells us when they exit: look.
        while True:
            await asyncio.sleep(1.0)
            for name, pid in list(self._adopted.items()):
                if not _alive(pid):
                    del self._adopted[name]
                    if self._on_exit:
                        self._on_exit(name, -1)

    async def close(self) -> None:
        if self._poller:
            self._poller.cancel()
