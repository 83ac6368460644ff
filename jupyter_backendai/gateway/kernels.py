# SPDX-License-Identifier: LGPL-3.0-or-later
"""The gateway's kernels: jupyter_server's MappingKernelManager, per user, outliving the process.

- Every kernel is started through the provisioner for the requesting user (``owner``) and
  tagged ``origin=gateway`` with its Jupyter kernel id and kernelspec name.
- A user sees and reaches only their own kernels: anyone else's id is 404, as if it did not
  exist (never 403, which would confirm that it does).
- Kernels are the manager's, not this process's: the gateway does not shut them down when it
  exits, and (re-)adopts every running gateway kernel it finds in the manager, at start and on
  every listing. A restarted gateway, or a second one, serves the same kernels.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from jupyter_client.provisioning import KernelProvisionerFactory as KPF
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager, ServerKernelManager
from jupyter_server.utils import ensure_async
from tornado import web
from traitlets import Bool, Float, Unicode

from ..client import ManagerAddress, ManagerClient, ManagerError
from ..provisioner import KernelStartError
from .identity import current_user

ORIGIN_TAG, ORIGIN = "origin", "gateway"
KERNEL_ID_TAG, KERNEL_NAME_TAG = "jupyter.kernel_id", "jupyter.kernel_name"


class BackendAIServerKernelManager(ServerKernelManager):  # type: ignore[misc]
    """One kernel; ``backendai_owner`` and ``backendai_tags`` are read by the provisioner."""

    backendai_owner = Unicode("")

    @property
    def backendai_tags(self) -> dict[str, str]:
        return {ORIGIN_TAG: ORIGIN, KERNEL_NAME_TAG: self.kernel_name}

    async def _async_restart_kernel(self, now: bool = False, newports: bool = False, **kw: Any) -> None:
        # The restarter restarts kernels that died. One that was shut down through another
        # gateway did not die: drop it from this gateway instead of starting a new one.
        if getattr(self.provisioner, "deleted_elsewhere", False):
            self.parent.forget(self.kernel_id)
            return
        await super()._async_restart_kernel(now=now, newports=newports, **kw)

    restart_kernel = _async_restart_kernel  # type: ignore[assignment]


class BackendAIKernelManager(AsyncMappingKernelManager):  # type: ignore[misc]
    adopt_interval = Float(5.0, config=True, help="Seconds between looks for kernels other gateways started.")
    shutdown_on_exit = Bool(False, config=True,
                            help="Shut kernels down when the gateway exits (default: they keep running).")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_manager_class = "jupyter_backendai.gateway.kernels.BackendAIServerKernelManager"
        self._client: ManagerClient | None = None
        self._adopting: dict[str, asyncio.Future[None]] = {}
        self._adopter: asyncio.Task[None] | None = None

    @property
    def client(self) -> ManagerClient:
        if self._client is None:
            self._client = ManagerClient(ManagerAddress.discover(), request_timeout=60)
        return self._client

    # ----- ownership --------------------------------------------------------------------

    def owner_of(self, kernel_id: str) -> str | None:
        km = self._kernels.get(kernel_id)
        return getattr(km, "backendai_owner", None) if km is not None else None

    def _check_kernel_id(self, kernel_id: str) -> None:
        user = current_user.get()
        if kernel_id not in self or (user is not None and self.owner_of(kernel_id) != user):
            raise web.HTTPError(404, "Kernel does not exist: %s" % kernel_id)

    async def _async_start_kernel(self, *, kernel_name: str | None = None, **kwargs: Any) -> str:  # type: ignore[override]
        # Sessions start kernels too, not only POST /api/kernels: the catalog must be current
        # and "python3" (what clients ask for when they name nothing) must mean ours.
        ksm = self.kernel_spec_manager
        await ksm.refresh()
        if kernel_name is not None:
            kernel_name = ksm.aliases.get(kernel_name, kernel_name)
        try:
            return await super()._async_start_kernel(kernel_name=kernel_name, **kwargs)
        except KernelStartError as e:
            # The manager's own status (404 unknown image, 400 bad resources, 403 policy) and
            # its one line, instead of jupyter_server's 500 with a traceback in the log.
            raise web.HTTPError(e.status if 400 <= e.status < 500 else 503, str(e)) from None

    start_kernel = _async_start_kernel  # type: ignore[assignment]

    def pre_start_kernel(self, kernel_name: str | None, kwargs: Any) -> tuple[Any, str, str]:
        km, name, kid = super().pre_start_kernel(kernel_name, kwargs)
        user = current_user.get()
        if user is None:
            raise web.HTTPError(403, "kernels are started for an authenticated Backend.AI user")
        km.backendai_owner = user
        return km, name, kid

    async def list_kernels(self) -> list[dict[str, Any]]:  # type: ignore[override]
        await self.adopt_running()
        user = current_user.get()
        return [k for k in super().list_kernels() if user is None or self.owner_of(k["id"]) == user]

    def forget(self, kernel_id: str) -> None:
        """Stop serving a kernel that is gone from Backend.AI, without touching it."""
        km = self._kernels.get(kernel_id)
        if km is None:
            return
        self.stop_watching_activity(kernel_id)
        km.stop_restarter()
        self.remove_kernel(kernel_id)
        self._kernel_connections.pop(kernel_id, None)
        self._kernel_ports.pop(kernel_id, None)
        self.log.info("Kernel %s was shut down elsewhere; no longer served here", kernel_id)

    # ----- kernels outlive the gateway ----------------------------------------------------

    async def _async_shutdown_all(self, now: bool = False) -> None:
        if self.shutdown_on_exit:
            await super()._async_shutdown_all(now=now)
            return
        if self._adopter:
            self._adopter.cancel()
        for kid in list(self._kernels):
            km = self._kernels[kid]
            self.stop_watching_activity(kid)
            km.stop_restarter()
            km.cleanup_connection_file()
        self.log.info("Leaving %d kernel(s) running in Backend.AI", len(self._kernels))

    shutdown_all = _async_shutdown_all  # type: ignore[assignment]

    def start_adopting(self) -> None:
        """Adopt now and every ``adopt_interval`` seconds (the extension calls this once)."""
        async def loop() -> None:
            while True:
                try:
                    await self.adopt_running()
                except Exception as e:  # the manager may be away for a moment
                    self.log.warning("adopting Backend.AI kernels: %s", e)
                await asyncio.sleep(self.adopt_interval)
        self._adopter = asyncio.ensure_future(loop())

    async def adopt_running(self) -> None:
        try:
            remote = await self.client.list_kernels(all_users=True)
        except ManagerError as e:
            self.log.warning("cannot list Backend.AI kernels: %s", e)
            return
        for k in remote:
            tags = k.get("tags") or {}
            kid = tags.get(KERNEL_ID_TAG)
            if (tags.get(ORIGIN_TAG) != ORIGIN or not kid or k["status"] != "RUNNING"
                    or kid in self._kernels or kid in self._pending_kernels):
                continue
            fut = self._adopting.get(kid)
            if fut is None:
                fut = self._adopting[kid] = asyncio.ensure_future(self._adopt(kid, k))
                fut.add_done_callback(lambda _f, kid=kid: self._adopting.pop(kid, None))
            try:
                await asyncio.shield(fut)
            except Exception as e:
                self.log.warning("could not adopt kernel %s: %s", kid, e)

    async def _adopt(self, kid: str, remote: dict[str, Any]) -> None:
        """Make a running Backend.AI kernel one of ours again, through the provisioner's re-attach."""
        name = (remote.get("tags") or {}).get(KERNEL_NAME_TAG) or self.default_kernel_name
        km = self.kernel_manager_factory(
            connection_file=os.path.join(self.connection_dir, f"kernel-{kid}.json"), parent=self, log=self.log,
            kernel_name=name, kernel_spec_manager=self.kernel_spec_manager)
        km.kernel_id = kid
        km.backendai_owner = remote["owner"]
        provisioner = KPF.instance(parent=self.parent).create_provisioner_instance(kid, km.kernel_spec, parent=km)
        await provisioner.load_provisioner_info({"kernel_id": kid, "connection_info": {}, "remote_id": remote["id"]})
        km.provisioner = provisioner
        km.load_connection_info(provisioner.connection_info)
        km._launch_args = {}
        km._ready = asyncio.get_running_loop().create_future()
        km._ready.set_result(None)
        km._attempted_start = True
        if kid in self._kernels:  # adopted meanwhile by another path
            return
        self._kernels[kid] = km
        self._kernel_connections[kid] = 0
        km.execution_state = "idle"
        km.reason = ""
        from jupyter_server._tz import utcnow

        km.last_activity = utcnow()
        await ensure_async(km.start_restarter())
        self._kernel_ports[kid] = km.ports
        self.start_watching_activity(kid)
        self.add_restart_callback(kid, lambda: self._handle_kernel_died(kid), "dead")
        self.log.info("Adopted Backend.AI kernel %s (%s) of %s", kid, name, remote["owner"])
