# SPDX-License-Identifier: LGPL-3.0-or-later
"""Who a request is: the owner of the Backend.AI token it carries.

Clients send the token as Jupyter clients do (``Authorization: token|Bearer X`` or ``?token=``);
the manager says whose it is (``/whoami``), and the answer is cached briefly so that VS Code's
10-second polls don't each cost a manager round trip. The user's name is put in a context
variable for the request, which is how the kernel and session managers (called by
jupyter_server's own handlers, without the request) know whose kernels to show.
"""

from __future__ import annotations

import contextvars
import hashlib
import time
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web
from traitlets import Float, default

from ..client import ManagerAddress, ManagerClient, ManagerError

#: The user name of the request being served (None outside requests: internal calls).
current_user: contextvars.ContextVar[str | None] = contextvars.ContextVar("backendai_user", default=None)


class BackendAIIdentityProvider(IdentityProvider):  # type: ignore[misc]
    cache_seconds = Float(30.0, config=True, help="How long a token's owner is remembered.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._client: ManagerClient | None = None

    @property
    def client(self) -> ManagerClient:
        if self._client is None:
            self._client = ManagerClient(ManagerAddress.discover(), request_timeout=30)
        return self._client

    @default("token")
    def _token_default(self) -> str:
        self.token_generated = False
        return ""  # no server-wide token: every user brings their own Backend.AI token

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return False

    def get_token(self, handler: web.RequestHandler) -> str | None:
        # A token in the path (see handlers.TokenPathRouter) counts like one in the URL.
        return getattr(handler.request, "backendai_token", None) or super().get_token(handler)

    async def owner_of(self, token: str) -> str | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        try:
            who = await ManagerClient(ManagerAddress(self.client.address.url, token), request_timeout=30).request("GET", "whoami")
            name: str | None = who["name"]
        except ManagerError as e:
            if e.status != 401:
                raise web.HTTPError(502, f"Backend.AI manager: {e}") from None
            name = None
        # Unknown tokens are remembered for a shorter time (a token may be issued any moment).
        self._cache[key] = (now + (self.cache_seconds if name else min(self.cache_seconds, 2.0)), name)
        return name

    async def get_user_token(self, handler: web.RequestHandler) -> User | None:
        token = self.get_token(handler)
        if not token:
            return None
        name = await self.owner_of(token)
        return User(username=name, name=name, display_name=name) if name else None

    async def get_user(self, handler: web.RequestHandler) -> User | None:  # type: ignore[override]
        user = await self._get_user(handler)
        current_user.set(user.username if user is not None else None)
        return user
