"""A small async client for the manager's REST API, shared by the provisioner and the CLI.

Where the manager is: ``BACKENDAI_URL``/``BACKENDAI_TOKEN``, else the connection file that
``jupyter backendai up`` writes into the Jupyter runtime dir, so a local user sets nothing.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jupyter_core.paths import jupyter_runtime_dir
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.netutil import DefaultLoopResolver, Resolver
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from . import names


class ManagerError(Exception):
    """The manager said no, or could not be reached; ``str()`` is one line for the user."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} ({self.code}, HTTP {self.status})" if self.status else self.message


def runtime_connection_file() -> Path:
    return Path(jupyter_runtime_dir()) / names.RUNTIME_CONNECTION_FILE


@dataclass(frozen=True)
class ManagerAddress:
    url: str
    token: str

    @classmethod
    def discover(cls, url: str = "", token: str = "") -> "ManagerAddress":
        url = url or os.environ.get(names.ENV_URL, "")
        token = token or os.environ.get(names.ENV_TOKEN, "")
        if not (url and token):
            f = runtime_connection_file()
            if f.exists():
                data = json.loads(f.read_text())
                url = url or data.get("url", "")
                token = token or data.get("token", "")
        if not url:
            raise ManagerError(0, "no_manager", f"no manager configured: set {names.ENV_URL} and "
                               f"{names.ENV_TOKEN}, or start one with `jupyter backendai up`")
        return cls(url.rstrip("/"), token)


class _Resolver(Resolver):  # type: ignore[misc]
    """Name lookups that work while the interpreter shuts down.

    The loop's default resolver runs ``getaddrinfo`` in the loop's executor, which refuses work
    once interpreter shutdown has begun; yet ``jupyter run`` shuts its kernel down from an
    ``atexit`` hook, so the provisioner's last requests (poll, DELETE) would fail and leave
    the kernel running. Numeric hosts need no lookup; a name falls back to its last answer.
    """

    def initialize(self) -> None:
        self._default = DefaultLoopResolver()
        self._known: dict[tuple[str, int, int], list[tuple[int, Any]]] = {}

    async def resolve(self, host: str, port: int, family: int = socket.AF_UNSPEC) -> list[tuple[int, Any]]:
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            pass
        else:
            if ip.version == 6:
                return [(socket.AF_INET6, (str(ip), port, 0, 0))]
            return [(socket.AF_INET, (str(ip), port))]
        key = (host, port, family)
        try:
            self._known[key] = await self._default.resolve(host, port, family)
        except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
            if key not in self._known:
                raise
        return self._known[key]


_RESOLVER = _Resolver()


class ManagerClient:
    def __init__(self, address: ManagerAddress, request_timeout: float = 330.0):
        self.address = address
        self.request_timeout = request_timeout

    async def request(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        url = f"{self.address.url}/api/v1/{path}"
        q = {k: v for k, v in query.items() if v is not None}
        if q:
            url += "?" + urlencode(q)
        req = HTTPRequest(
            url, method=method,
            headers={"Authorization": f"Bearer {self.address.token}", "Content-Type": "application/json"},
            body=json.dumps(body) if body is not None else (b"" if method in ("POST", "PUT") else None),
            request_timeout=self.request_timeout, connect_timeout=10,
        )
        http = SimpleAsyncHTTPClient(force_instance=True, resolver=_RESOLVER)
        try:
            resp = await http.fetch(req)
        except HTTPClientError as e:
            if e.response is None:  # 599: no answer at all
                raise ManagerError(0, "unreachable", f"manager at {self.address.url} unreachable: {e}") from None
            try:
                err = json.loads(e.response.body)
                raise ManagerError(e.code, err.get("error", "error"), err.get("message", "")) from None
            except (ValueError, AttributeError):
                raise ManagerError(e.code, "error", e.response.reason or str(e)) from None
        except OSError as e:
            raise ManagerError(0, "unreachable", f"manager at {self.address.url} unreachable: {e}") from None
        finally:
            http.close()
        return json.loads(resp.body) if resp.body else None

    async def create_kernel(self, image: str, resources: dict[str, Any] | None = None, env: dict[str, str] | None = None,
                            argv: list[str] | None = None, jail: dict[str, Any] | None = None,
                            tags: dict[str, str] | None = None, owner: str | None = None,
                            wait: float = 120.0) -> dict[str, Any]:
        body: dict[str, Any] = {"image": image, "env": env or {}}
        if tags:
            body["tags"] = tags
        if owner:
            body["owner"] = owner  # an admin token creating a kernel on a user's behalf (the gateway)
        if jail:
            body["jail"] = jail
        if resources:
            body["resources"] = resources
        if argv:
            body["argv"] = argv
        return await self.request("POST", "kernels", body, wait=wait)

    async def get_kernel(self, kid: str, wait: float | None = None) -> dict[str, Any]:
        return await self.request("GET", f"kernels/{kid}", wait=wait)

    async def delete_kernel(self, kid: str, grace: float = 0.0) -> None:
        await self.request("DELETE", f"kernels/{kid}", grace=grace or None)

    async def signal_kernel(self, kid: str, signum: int) -> None:
        await self.request("POST", f"kernels/{kid}/signal", {"signal": signum})

    async def list_kernels(self, all_users: bool = False) -> list[dict[str, Any]]:
        return (await self.request("GET", "kernels", all="1" if all_users else None))["kernels"]

    async def list_agents(self) -> list[dict[str, Any]]:
        return (await self.request("GET", "agents"))["agents"]

    async def list_images(self) -> list[dict[str, Any]]:
        return (await self.request("GET", "images"))["images"]
