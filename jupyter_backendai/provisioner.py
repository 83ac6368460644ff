"""``backendai-provisioner``: jupyter_client kernels that run on a Backend.AI cluster.

The KernelManager drives this class exactly as it drives the LocalProvisioner; instead of a
local process there is a kernel the manager placed on an agent. This module talks only to the
manager's REST API: never to Docker, never to agents.

Lifecycle, as the KernelManager calls it:
  pre_launch   -> argv from the kernelspec (the container's argv, not format_kernel_cmd's
                  rewrite of ``python`` to the host interpreter) and a filtered environment
  launch_kernel-> POST /kernels, wait until RUNNING, return the agent's connection info
  poll/wait    -> the manager's cached state (agents push exits), cheap enough for 0.1 s polls
  send_signal  -> through manager and agent (the fallback; interrupts go as messages)
  shutdown_requested -> DELETE with a grace period (the kernel exits by itself meanwhile)
  kill/terminate/cleanup -> DELETE: container, ports, slots and row are freed
  get/load_provisioner_info -> the kernel id, so a restarted server re-attaches
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import signal
import time
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase
from traitlets import Dict, Float, List, Unicode

from .client import ManagerAddress, ManagerClient, ManagerError

log = logging.getLogger(__name__)


class KernelStartError(RuntimeError):
    """The manager refused or failed a start; ``status`` is its HTTP status (0: unreachable),
    so that a server in front (the gateway) can answer with the same one."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status

# Launch-environment names a client may pass to the kernel (jupyter_server passes its whole
# os.environ; none of that may reach an agent).
DEFAULT_ENV_ALLOW = ["JPY_SESSION_NAME", "KERNEL_USERNAME", "KERNEL_WORKING_DIR"]


class BackendAIProvisioner(KernelProvisionerBase):  # type: ignore[misc]
    image = Unicode("", config=True, help="Kernel image, e.g. backendai/kernel-python:3.11 (from the kernelspec).")
    resources = Dict({}, config=True, help='Slots to ask for, e.g. {"cpu": 1, "mem": "1g"}.')
    jail = Dict({}, config=True, help='Jail policy overrides for this kernel, e.g. {"network": "off"} '
                                     "(non-admins may only tighten the image's policy).")
    manager_url = Unicode("", config=True, help="Manager URL; default BACKENDAI_URL or the `up` runtime file.")
    token = Unicode("", config=True, help="Manager token; default BACKENDAI_TOKEN or the `up` runtime file.")
    env_allow = List(Unicode(), DEFAULT_ENV_ALLOW, config=True,
                     help="Names (glob patterns) of launch-environment variables passed to the kernel.")
    tags = Dict({}, config=True, help="Tags stored with the kernel in the manager (the gateway marks its kernels).")
    owner = Unicode("", config=True, help="Create the kernel for this user (needs an admin token; the gateway sets it).")
    start_timeout = Float(300.0, config=True, help="Seconds to wait for a kernel to be placed and ready.")
    poll_interval = Float(0.1, config=True, help="How stale a poll answer may be, in seconds.")

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._client: ManagerClient | None = None
        self._remote_id: str | None = None
        self._exit_code: int | None = None
        self._polled_at = 0.0
        self._launch: dict[str, Any] = {}
        self.deleted_elsewhere = False

    @property
    def client(self) -> ManagerClient:
        if self._client is None:
            self._client = ManagerClient(ManagerAddress.discover(self.manager_url, self.token))
        return self._client

    @property
    def has_process(self) -> bool:
        return self._remote_id is not None

    # ----- launch ------------------------------------------------------------------------

    def _kernel_env(self, env: dict[str, str]) -> dict[str, str]:
        spec_env = set(self.kernel_spec.env) if self.kernel_spec else set()
        return {k: v for k, v in env.items()
                if k in spec_env or any(fnmatch.fnmatchcase(k, pat) for pat in self.env_allow)}

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        kwargs = await super().pre_launch(**kwargs)
        env = kwargs.pop("env", {})
        if not self.image:
            raise RuntimeError("backendai-provisioner: the kernelspec names no image "
                               "(metadata.kernel_provisioner.config.image)")
        image = env.get("KERNEL_IMAGE") or self.image
        resources = dict(self.resources)
        for key in ("cpu", "mem", "gpu"):
            if env.get(f"KERNEL_{key.upper()}"):
                resources[key] = env[f"KERNEL_{key.upper()}"]
        # The Jupyter kernel id rides along as a tag, so that a restarted server finds its kernels.
        # The gateway's KernelManager names the user and adds its own tags (gateway/kernels.py).
        tags = {"jupyter.kernel_id": str(self.kernel_id), **self.tags, **getattr(self.parent, "backendai_tags", {})}
        owner = self.owner or getattr(self.parent, "backendai_owner", "")
        self._launch = {"image": image, "resources": resources, "env": self._kernel_env(env), "jail": dict(self.jail),
                        "tags": tags, "owner": owner or None}
        # The kernelspec's argv is the container's argv; "{connection_file}" is filled in by
        # the agent, which writes that file where the kernel can read it.
        kwargs["cmd"] = list(self.kernel_spec.argv)
        return kwargs

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        try:
            k = await self.client.create_kernel(argv=cmd, wait=self.start_timeout, **self._launch)
            self._remote_id = k["id"]
            if k["status"] != "RUNNING":
                k = await self._await_running(k)
        except ManagerError as e:
            raise KernelStartError(e.status, f"Backend.AI could not start the kernel: {e}") from None
        except BaseException:
            # Cancelled while waiting (e.g. the client gave up): don't leave a kernel behind.
            if self._remote_id:
                await asyncio.shield(self._delete())
            raise
        self._exit_code = None
        self.connection_info = self._connection(k)
        return self.connection_info

    async def _await_running(self, k: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + self.start_timeout
        while k["status"] in ("PENDING", "CREATING") and time.monotonic() < deadline:
            k = await self.client.get_kernel(k["id"], wait=min(60.0, deadline - time.monotonic()))
        if k["status"] != "RUNNING":
            await self._delete()
            raise ManagerError(0, "start_timeout", f"kernel {k['id']} is still {k['status']} after {self.start_timeout:g} s")
        return k

    @staticmethod
    def _connection(k: dict[str, Any]) -> KernelConnectionInfo:
        info = dict(k["connection"])
        info["key"] = info["key"].encode()
        return info

    # ----- state -------------------------------------------------------------------------

    async def poll(self) -> int | None:
        if self._remote_id is None:
            return self._exit_code
        now = time.monotonic()
        if now - self._polled_at < self.poll_interval:
            return None
        self._polled_at = now
        try:
            k = await self.client.get_kernel(self._remote_id)
        except ManagerError as e:
            if e.status == 404:
                # Shut down by someone else (another gateway, `jupyter backendai kill`): gone
                # for good, not crashed, so nothing should restart it.
                self.deleted_elsewhere = True
                self._exit_code = self._exit_code if self._exit_code is not None else -1
                return self._exit_code
            # Manager unreachable (restarting?): the kernel itself may be fine; say alive.
            log.debug("poll %s: %s", self._remote_id, e)
            return None
        if k["status"] in ("EXITED", "LOST"):
            self._exit_code = k["exit_code"] if k["exit_code"] is not None else -1
            return self._exit_code
        return None

    async def wait(self) -> int | None:
        while await self.poll() is None:
            await asyncio.sleep(0.1)
        return self._exit_code

    async def send_signal(self, signum: int) -> None:
        if self._remote_id is None:
            return
        try:
            await self.client.signal_kernel(self._remote_id, int(signum))
        except ManagerError as e:
            if e.code != "not_running":
                raise RuntimeError(f"Backend.AI could not signal the kernel: {e}") from None

    # ----- teardown ----------------------------------------------------------------------

    async def _delete(self, grace: float = 0.0) -> None:
        kid, self._remote_id = self._remote_id, None
        if kid is None:
            return
        try:
            await self.client.delete_kernel(kid, grace=grace)
        except ManagerError as e:
            if e.status != 404:
                log.warning("could not delete Backend.AI kernel %s: %s", kid, e)
        if self._exit_code is None:
            self._exit_code = -int(signal.SIGKILL)

    async def kill(self, restart: bool = False) -> None:
        await self._delete()

    async def terminate(self, restart: bool = False) -> None:
        await self._delete()

    async def cleanup(self, restart: bool = False) -> None:
        await self._delete()

    async def shutdown_requested(self, restart: bool = False) -> None:
        """The kernel was just sent a shutdown_request: delete it now, giving it the shutdown
        wait time to exit by itself. Its exit then reads as a deletion to every other server
        serving it (a second gateway), not as a crash that their restarters would answer with
        a new kernel, as they would if we deleted it only after seeing it exit."""
        await self._delete(grace=self.get_shutdown_wait_time(getattr(self.parent, "shutdown_wait_time", 5.0)))

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        return recommended

    def get_stable_start_time(self, recommended: float = 10.0) -> float:
        # A cold container start can take longer than a local process start.
        return max(recommended, 30.0)

    # ----- persistence (re-attach after a server restart) --------------------------------

    async def get_provisioner_info(self) -> dict[str, Any]:
        info = await super().get_provisioner_info()
        info.update(remote_id=self._remote_id, manager_url=self.client.address.url)
        if isinstance(info.get("connection_info", {}).get("key"), bytes):
            info["connection_info"] = {**info["connection_info"], "key": info["connection_info"]["key"].decode()}
        return info

    async def load_provisioner_info(self, provisioner_info: dict[str, Any]) -> None:
        await super().load_provisioner_info(provisioner_info)
        self._remote_id = provisioner_info.get("remote_id")
        if provisioner_info.get("manager_url") and not self.manager_url:
            self.manager_url = provisioner_info["manager_url"]
        if self._remote_id:
            k = await self.client.get_kernel(self._remote_id)
            self.connection_info = self._connection(k)
