"""The Docker runtime: one container per kernel, limited, labelled, and re-adoptable.

All Docker SDK calls are blocking, so each goes to the loop's executor; the event stream runs
in its own thread and hands exits back to the loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import shutil
import threading
from typing import Any, Callable, TypeVar

from ... import names
from ...manager.scheduler import parse_mem
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
T = TypeVar("T")


def image_info(name: str, labels: dict[str, str]) -> ImageInfo | None:
    """Catalog entry for an image built for us (it carries a kernelspec label), else None."""
    spec = labels.get(names.LABEL_KERNELSPEC)
    if not spec:
        return None
    try:
        kernelspec = json.loads(spec)
        return ImageInfo(
            name=name,
            lang=labels.get(names.LABEL_LANG, kernelspec.get("language", "")),
            kernelspec=kernelspec,
            min_cpu=float(labels.get(names.LABEL_MIN_CPU, "1")),
            min_mem=parse_mem(labels.get(names.LABEL_MIN_MEM, "256m")),
            labels=dict(labels),
        )
    except (ValueError, TypeError):
        log.warning("image %s has a malformed kernelspec label; skipped", name)
        return None


class DockerRuntime(Runtime):
    kind = "docker"

    def __init__(self, client: Any, *, bind_ip: str = "0.0.0.0", **kwargs: Any):
        super().__init__(**kwargs)
        self._client = client
        self._bind_ip = bind_ip
        self._events: Any = None
        self._thread: threading.Thread | None = None

    @classmethod
    async def connect(cls, **kwargs: Any) -> "DockerRuntime":
        """Connect to the engine; RuntimeError_ if none answers."""
        import docker  # imported here so the process runtime works without the SDK

        def _connect() -> Any:
            client = docker.from_env(timeout=60)
            client.ping()
            return client

        try:
            client = await asyncio.get_running_loop().run_in_executor(None, _connect)
        except Exception as e:
            raise RuntimeError_(f"no Docker engine answers ({type(e).__name__})") from e
        return cls(client, **kwargs)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))

    async def images(self) -> list[ImageInfo]:
        imgs = await self._run(self._client.images.list, filters={"label": names.LABEL_KERNELSPEC})
        out: list[ImageInfo] = []
        for img in imgs:
            for tag in img.tags:
                info = image_info(tag, img.labels or {})
                if info:
                    out.append(info)
        return sorted(out, key=lambda i: i.name)

    def _labels(self, name: str) -> dict[str, str]:
        return {names.LABEL_MANAGED: "1", names.LABEL_AGENT: self.agent_id, names.LABEL_KERNEL: name}

    async def start(self, launch: KernelLaunch) -> RuntimeKernel:
        import docker.errors

        try:
            image = await self._run(self._client.images.get, launch.image)
        except docker.errors.ImageNotFound:
            raise RuntimeError_(f"image {launch.image} is not on agent {self.agent_id}") from None
        uid = int((image.labels or {}).get(names.LABEL_UID, "1000"))
        conn_path = launch.kernel_dir / "connection.json"
        # Inside the container the kernel binds all interfaces on the same port numbers that
        # are published on the host, so one connection file serves both sides.
        write_connection_file(conn_path, connection_info(launch.ports, launch.key, "0.0.0.0"), uid=uid)
        argv = [a.replace("{connection_file}", names.CONTAINER_CONNECTION_FILE) for a in launch.argv]
        kwargs: dict[str, Any] = dict(
            image=launch.image,
            command=argv,
            name=f"backendai-{launch.name}",
            labels=self._labels(launch.name),
            environment=launch.env,
            detach=True,
            user=str(uid),
            nano_cpus=int(launch.cpu * 1e9),
            mem_limit=launch.mem,
            memswap_limit=launch.mem,
            pids_limit=launch.pids,
            ports={f"{p}/tcp": (self._bind_ip, p) for p in launch.ports},
            volumes=self._mounts(launch, image.labels or {}, conn_path, uid),
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
        )
        container = None
        try:
            container = await self._run(self._client.containers.create, **kwargs)
            await self._run(container.start)
        except Exception as e:
            if container is not None:
                await self._remove(container.id)
            shutil.rmtree(launch.kernel_dir, ignore_errors=True)
            raise RuntimeError_(f"container for {launch.image} failed to start: {_one_line(e)}") from e
        return RuntimeKernel(
            name=launch.name, image=launch.image, ref=container.id,
            connection=connection_info(launch.ports, launch.key, self.advertise_ip),
            cpu=launch.cpu, mem=launch.mem,
        )

    @staticmethod
    def _mounts(launch: KernelLaunch, labels: dict[str, str], conn_path: Any, uid: int) -> dict[str, Any]:
        mounts = {str(conn_path): {"bind": names.CONTAINER_CONNECTION_FILE, "mode": "ro"}}
        jail_path = labels.get(names.LABEL_JAIL)
        if jail_path and launch.jail_policy:
            # The kernel may read its policy but never change it (root-owned, read-only mount).
            policy = launch.kernel_dir / "jail.json"
            policy.write_text(launch.jail_policy)
            policy.chmod(0o644)
            mounts[str(policy)] = {"bind": jail_path, "mode": "ro"}
        return mounts

    async def _remove(self, ref: str) -> None:
        """Remove the container; return only once it is gone, even when another caller (the
        exit watcher, a DELETE) started removing it first."""
        import docker.errors

        try:
            c = await self._run(self._client.containers.get, ref)
            await self._run(c.remove, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            if "already in progress" not in str(e):
                raise
            try:
                await self._run(self._client.api.wait, ref, condition="removed")
            except docker.errors.NotFound:
                pass

    async def last_output(self, name: str) -> str:
        import docker.errors

        try:
            c = await self._run(self._client.containers.get, f"backendai-{name}")
            # Why it died is on stderr (tini's exec failure, a traceback) more than on stdout.
            for streams in ({"stdout": False, "stderr": True}, {"stdout": True, "stderr": True}):
                logs = await self._run(c.logs, tail=20, **streams)
                lines = [ln for ln in logs.decode(errors="replace").splitlines() if ln.strip()]
                if lines:
                    return _one_line(Exception(lines[-1]))[:200]
        except docker.errors.APIError:
            pass
        return ""

    async def destroy(self, name: str) -> None:
        await self._remove(f"backendai-{name}")
        shutil.rmtree(self.kernels_dir / name, ignore_errors=True)

    async def signal(self, name: str, signum: int) -> None:
        import docker.errors

        try:
            c = await self._run(self._client.containers.get, f"backendai-{name}")
            # tini (-g) forwards the signal to the kernel's process group.
            await self._run(c.kill, signal=signum)
        except docker.errors.NotFound:
            raise RuntimeError_(f"kernel {name} is not running") from None

    async def adopt(self) -> list[RuntimeKernel]:
        flt = {"label": [f"{names.LABEL_AGENT}={self.agent_id}", f"{names.LABEL_MANAGED}=1"]}
        containers = await self._run(self._client.containers.list, all=True, filters=flt)
        out: list[RuntimeKernel] = []
        for c in containers:
            name = c.labels.get(names.LABEL_KERNEL, "")
            conn_path = self.kernels_dir / name / "connection.json"
            if c.status != "running" or not name or not conn_path.exists():
                await self._remove(c.id)
                shutil.rmtree(self.kernels_dir / name, ignore_errors=True) if name else None
                continue
            info = read_connection_file(conn_path)
            hc = c.attrs.get("HostConfig", {})
            out.append(RuntimeKernel(
                name=name, image=(c.image.tags or [c.attrs["Config"]["Image"]])[0], ref=c.id,
                connection=connection_info([int(info[p]) for p in PORT_NAMES], info["key"], self.advertise_ip),
                cpu=(hc.get("NanoCpus") or 0) / 1e9, mem=hc.get("Memory") or 0,
            ))
        return out

    def watch(self, on_exit: ExitCallback) -> None:
        loop = asyncio.get_running_loop()
        flt = {"type": "container", "event": "die", "label": f"{names.LABEL_AGENT}={self.agent_id}"}
        self._events = self._client.events(decode=True, filters=flt)

        def pump() -> None:
            try:
                for ev in self._events:
                    attrs = ev.get("Actor", {}).get("Attributes", {})
                    name = attrs.get(names.LABEL_KERNEL)
                    if name:
                        code = int(attrs.get("exitCode", "-1"))
                        loop.call_soon_threadsafe(on_exit, name, code)
            except Exception:  # the stream ends when we close it
                pass

        self._thread = threading.Thread(target=pump, name="docker-events", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        if self._events is not None:
            self._events.close()


def _one_line(e: Exception) -> str:
    text = getattr(e, "explanation", None) or str(e)
    return " ".join(str(text).split())[:300]
