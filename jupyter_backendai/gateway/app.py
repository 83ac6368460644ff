# SPDX-License-Identifier: LGPL-3.0-or-later
"""``jupyter backendai gateway``: Jupyter Server with the Backend.AI extension, on port 8888."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from tornado.routing import PathMatches, Rule

from .handlers import (
    KERNEL_ID, KernelSpecsHandler, KernelsHandler, OneKernelSpecHandler, OwnKernelActionHandler,
    OwnKernelHandler, TokenPathRouter, TreeHandler,
)
from .websocket import OneSessionKernelWebsocketHandler

_ACTION = r"(?P<action>restart|interrupt)"


class GatewayApp(ExtensionApp):  # type: ignore[misc]
    name = "backendai_gateway"
    description = "Jupyter Server whose kernels run on Backend.AI, per user"
    # Only this extension: others (jupyter_lsp starts language servers on this host, JupyterLab
    # serves a UI) were written for a server that belongs to one user. JupyterLab users point
    # their own Lab at the gateway with --gateway-url.
    load_other_extensions = False

    serverapp_config = {
        "open_browser": False,
        # No kernel runs in this process (they run in Backend.AI's containers), so root here
        # does not mean kernels as root.
        "allow_root": True,
        # A Backend.AI token is a right to kernels in containers, not to a shell on this host.
        "terminals_enabled": False,
        "kernel_manager_class": "jupyter_backendai.gateway.kernels.BackendAIKernelManager",
        "session_manager_class": "jupyter_backendai.gateway.sessions.BackendAISessionManager",
        "kernel_spec_manager_class": "jupyter_backendai.gateway.kernelspecs.BackendAIKernelSpecManager",
        "identity_provider_class": "jupyter_backendai.gateway.identity.BackendAIIdentityProvider",
        "contents_manager_class": "jupyter_backendai.gateway.contents.PerUserContentsManager",
    }

    @classmethod
    def get_extension_package(cls) -> str:
        return "jupyter_backendai.gateway"  # the extension lives here, not in the top-level package

    def initialize_settings(self) -> None:
        km = self.serverapp.kernel_manager
        km.default_kernel_name = "backendai-python"

    def initialize_handlers(self) -> None:
        self.handlers.extend([
            (r"/api/kernels/?", KernelsHandler),
            (r"/api/kernelspecs/?", KernelSpecsHandler),
            (r"/api/kernelspecs/(?P<kernel_name>[\w\.\-%]+)/?", OneKernelSpecHandler),
            (rf"/api/kernels/{KERNEL_ID}/?", OwnKernelHandler),
            (rf"/api/kernels/{KERNEL_ID}/{_ACTION}/?", OwnKernelActionHandler),
            (rf"/api/kernels/{KERNEL_ID}/channels", OneSessionKernelWebsocketHandler),
            (r"/tree/?(?P<path>.*)", TreeHandler),
        ])
        web_app = self.serverapp.web_app
        base = self.serverapp.base_url
        # First of all rules: it rewrites the path and hands the request back to the app.
        web_app.default_router.rules.insert(0, Rule(PathMatches(url_path_join(base, r"backendai-token/.*")),
                                                    TokenPathRouter(web_app, base)))

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        await self.serverapp.kernel_spec_manager.refresh(force=True)
        self.serverapp.kernel_manager.start_adopting()
        self._refresher = asyncio.ensure_future(self.serverapp.kernel_spec_manager.refresh_forever())


main = launch_new_instance = GatewayApp.launch_instance
