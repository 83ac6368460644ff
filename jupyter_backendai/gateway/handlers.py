# SPDX-License-Identifier: LGPL-3.0-or-later
"""The few handlers the gateway changes; everything else is jupyter_server's own.

Registered by the extension, these take precedence over the core routes with the same patterns.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.services.kernels.handlers import KernelActionHandler, KernelHandler, MainKernelHandler
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler
from jupyter_server.services.kernelspecs.handlers import KernelSpecHandler, MainKernelSpecHandler
from jupyter_server.utils import ensure_async, url_escape, url_path_join
from tornado import httputil, web
from tornado.routing import Router

KERNEL_ID = r"(?P<kernel_id>\w+-\w+-\w+-\w+-\w+)"
#: Launch-environment names a client may send with POST /api/kernels (GatewayClient sends
#: KERNEL_USERNAME, KERNEL_WORKING_DIR and any KERNEL_* of its own environment).
ENV_PATTERN = re.compile(r"KERNEL_[A-Z0-9_]+\Z")


class AdoptFirst:
    """A kernel another gateway started since our last look is adopted before we answer 404;
    anyone else's kernel is 404 before any work starts."""

    async def prepare(self) -> None:  # type: ignore[misc]
        await super().prepare()  # type: ignore[misc]
        kid = self.path_kwargs.get("kernel_id")  # type: ignore[attr-defined]
        km = self.kernel_manager  # type: ignore[attr-defined]
        if kid and kid not in km:
            await km.adopt_running()
        if kid:
            # 404 here, before jupyter_server's handler turns it into a 500 "Exception restarting kernel".
            km._check_kernel_id(kid)


class KernelsHandler(MainKernelHandler):  # type: ignore[misc]
    @web.authenticated
    async def post(self) -> None:
        """Start a kernel; ``env`` of KERNEL_* names is honoured (the provisioner filters it again)."""
        km = self.kernel_manager
        model = self.get_json_body() or {}
        if not isinstance(model, dict):
            raise web.HTTPError(400, "body must be a JSON object")
        name = model.get("name") or km.default_kernel_name
        env = model.get("env") or {}
        if not isinstance(env, dict):
            raise web.HTTPError(400, "'env' must map names to strings")
        env = {k: str(v) for k, v in env.items() if isinstance(k, str) and ENV_PATTERN.match(k)}
        await self.kernel_spec_manager.refresh()
        # jupyter_server's GatewayKernelManager asks for "python3" when its caller named no
        # kernel (nbclient and papermill never pass one on): that is our Python kernel.
        name = self.kernel_spec_manager.aliases.get(name, name)
        if name not in self.kernel_spec_manager.find_kernel_specs():
            raise web.HTTPError(404, f"No such kernel: {name}")
        kernel_id = await ensure_async(km.start_kernel(kernel_name=name, path=model.get("path"), env=env))
        if self.request.connection.stream.closed():
            # Its client gave up waiting (a full cluster queues starts; GatewayClient times out
            # after 42 s and asks again): nobody will ever learn this kernel's id, so it would
            # hold its slots until culled.
            self.log.info("Kernel %s shut down: its client left before it started", kernel_id)
            await ensure_async(km.shutdown_kernel(kernel_id, now=True))
            return
        out = await ensure_async(km.kernel_model(kernel_id))
        self.set_header("Location", url_path_join(self.base_url, "api", "kernels", url_escape(kernel_id)))
        self.set_status(201)
        self.finish(json.dumps(out, default=str))


class FreshCatalog:
    """The catalog is re-read from the manager when it is older than its refresh period, so a
    new image shows up on the next request, not only after the background refresh."""

    async def prepare(self) -> None:  # type: ignore[misc]
        await super().prepare()  # type: ignore[misc]
        await self.kernel_spec_manager.refresh()  # type: ignore[attr-defined]


class KernelSpecsHandler(FreshCatalog, MainKernelSpecHandler):  # type: ignore[misc]
    pass


class OneKernelSpecHandler(FreshCatalog, KernelSpecHandler):  # type: ignore[misc]
    pass


class OwnKernelHandler(AdoptFirst, KernelHandler):  # type: ignore[misc]
    pass


class OwnKernelActionHandler(AdoptFirst, KernelActionHandler):  # type: ignore[misc]
    pass


class NoDelayKernelWebsocketHandler(AdoptFirst, KernelWebsocketHandler):  # type: ignore[misc]
    """Nagle's algorithm holds small frames back by up to ~40 ms waiting for the peer's ACK:
    an execute round trip is a handful of small frames, so switch it off."""

    async def open(self, kernel_id: str) -> None:  # type: ignore[override]
        self.set_nodelay(True)
        await super().open(kernel_id)


class TreeHandler(JupyterHandler):  # type: ignore[misc]
    """VS Code probes /tree to check that a URL and token lead to a Jupyter server."""

    @web.authenticated
    def get(self, path: str = "") -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish("<!doctype html><title>Backend.AI gateway</title>"
                    "<p>Backend.AI gateway: kernels at <code>/api/kernels</code>, sessions at <code>/api/sessions</code>.</p>")


class TokenPathRouter(Router):
    """``<base>/backendai-token/<token>/<rest>`` is ``<base>/<rest>`` with that token.

    For clients that cannot send a header on every connection: jupyter_server's
    GatewayKernelClient (nbclient through ``--gateway-url``) opens its websocket with no
    credentials at all, but keeps the gateway URL's path, so the token can ride in it.
    """

    def __init__(self, app: web.Application, base_url: str) -> None:
        self.app = app
        self.prefix = re.compile("^" + re.escape(url_path_join(base_url, "backendai-token")) + "/([^/]+)(/.*)?$")
        self.base_url = base_url

    def find_handler(self, request: httputil.HTTPServerRequest, **kwargs: Any) -> httputil.HTTPMessageDelegate | None:
        m = self.prefix.match(request.path)
        if m is None:
            return None
        rest = url_path_join(self.base_url, (m.group(2) or "/").lstrip("/"))
        request.backendai_token = m.group(1)  # type: ignore[attr-defined]
        request.path = rest
        request.uri = rest + (("?" + request.query) if request.query else "")
        return self.app.find_handler(request)
