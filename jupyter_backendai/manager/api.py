"""The manager's REST API under ``/api/v1/`` (tornado).

Handlers only parse, authenticate and translate: the work happens in KernelService. Every
error leaves as ``{"error": CODE, "message": TEXT}`` with its status code.
"""

from __future__ import annotations

import json
import signal as signal_mod
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from tornado import web

from .. import __version__
from . import metrics
from .auth import issue_token, token_from_header
from .errors import ApiError, not_found

MAX_WAIT = 300.0


def kernel_view(k: dict[str, Any]) -> dict[str, Any]:
    """What clients see of a kernel (no internal bookkeeping)."""
    conn = dict(k["connection"]) if k.get("connection") else None
    return {
        "id": k["id"], "owner": k["owner"], "image": k["image"], "status": k["status"],
        "agent": k["agent_id"], "resources": k["resources"], "connection": conn,
        "exit_code": k["exit_code"], "created": k["created"], "updated": k["updated"],
        "tags": dict(k["spec"].get("tags") or {}),
        # From the agent's view of its IOPub stream (any client's traffic counts).
        "last_activity": k.get("last_activity") or k["updated"], "execution_state": k.get("execution_state", "unknown"),
    }


class BaseHandler(web.RequestHandler):
    user: dict[str, Any]

    @property
    def manager(self) -> Any:
        return self.settings["manager"]

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")

    async def prepare(self) -> None:
        token = token_from_header(self.request.headers.get("Authorization"), self.get_query_argument("token", None))
        if token is None:
            raise ApiError(401, "unauthorized", "missing token: send 'Authorization: Bearer <token>'")
        user = await self.manager.authenticate(token)
        if user is None:
            raise ApiError(401, "unauthorized", "invalid token")
        self.user = user

    def on_finish(self) -> None:
        metrics.HTTP_REQUESTS.labels(method=self.request.method, status=str(self.get_status())).inc()

    def body(self) -> dict[str, Any]:
        if not self.request.body:
            return {}
        try:
            data = json.loads(self.request.body)
        except ValueError as e:
            raise ApiError(400, "bad_json", f"request body is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "bad_json", "request body must be a JSON object")
        return data

    def wait_arg(self, default: float, name: str = "wait") -> float:
        raw = self.get_query_argument(name, None)
        try:
            return min(MAX_WAIT, max(0.0, float(raw))) if raw is not None else default
        except ValueError:
            raise ApiError(400, "bad_argument", f"{name} must be a number of seconds, not {raw!r}") from None

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            self.set_status(exc.status)
            self.finish(json.dumps({"error": exc.code, "message": exc.message}))
            return
        if isinstance(exc, web.HTTPError):
            self.finish(json.dumps({"error": "http_error", "message": exc.log_message or self._reason}))
            return
        self.finish(json.dumps({"error": "internal", "message": f"{type(exc).__name__}: {exc}" if exc else self._reason}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ApiError):
            return  # an expected answer, not a server fault
        super().log_exception(typ, value, tb)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            status_code = exc.status
        super().send_error(status_code, **kwargs)


class KernelsHandler(BaseHandler):
    async def get(self) -> None:
        all_users = self.get_query_argument("all", "0") in ("1", "true")
        self.reply({"kernels": [kernel_view(k) for k in self.manager.kernels.list(self.user, all_users)]})

    async def post(self) -> None:
        body = self.body()
        image = body.get("image")
        if not isinstance(image, str) or not image:
            raise ApiError(400, "bad_request", "'image' (string) is required")
        env = body.get("env") or {}
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise ApiError(400, "bad_request", "'env' must map strings to strings")
        argv = body.get("argv")
        if argv is not None and (not isinstance(argv, list) or not all(isinstance(a, str) for a in argv) or not argv):
            raise ApiError(400, "bad_request", "'argv' must be a non-empty list of strings")
        constraints = body.get("constraints") or {}
        if not isinstance(constraints, dict):
            raise ApiError(400, "bad_request", "'constraints' must map label names to values")
        jail = body.get("jail") or {}
        if not isinstance(jail, dict):
            raise ApiError(400, "bad_request", "'jail' must map policy keys to values")
        tags = body.get("tags") or {}
        if (not isinstance(tags, dict) or len(tags) > 32
                or not all(isinstance(k, str) and isinstance(v, str) and len(k) + len(v) <= 512 for k, v in tags.items())):
            raise ApiError(400, "bad_request", "'tags' must map at most 32 strings to strings")
        owner = self.user
        if body.get("owner") and body["owner"] != self.user["name"]:
            if not self.user["is_admin"]:
                raise ApiError(403, "forbidden", "only an admin can create kernels for another user")
            owner = {"name": body["owner"], "is_admin": False}
        k = await self.manager.kernels.create(owner, image, body.get("resources"), env, argv, constraints, jail, tags)
        k = await self.manager.kernels.wait_for(k["id"], {"RUNNING", "EXITED", "LOST"}, self.wait_arg(120.0))
        self.reply(kernel_view(k), 201 if k["status"] == "RUNNING" else 202)


class KernelHandler(BaseHandler):
    async def get(self, kid: str) -> None:
        k = self.manager.kernels.get(kid, self.user)
        wait = self.wait_arg(0.0)
        if wait and k["status"] in ("PENDING", "CREATING"):
            k = await self.manager.kernels.wait_for(kid, {"RUNNING", "EXITED", "LOST"}, wait)
        self.reply(kernel_view(k))

    async def delete(self, kid: str) -> None:
        await self.manager.kernels.delete(kid, self.user, grace=self.wait_arg(0.0, "grace"))
        self.set_status(204)
        self.finish()


def parse_signal(value: Any) -> int:
    if isinstance(value, int) and 0 < value < 65:
        return value
    if isinstance(value, str):
        name = value.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if hasattr(signal_mod.Signals, name):
            return int(signal_mod.Signals[name])
    raise ApiError(400, "bad_signal", f"unknown signal {value!r}")


class KernelActionHandler(BaseHandler):
    async def post(self, kid: str, action: str) -> None:
        kernels = self.manager.kernels
        if action == "interrupt":
            await kernels.signal(kid, self.user, int(signal_mod.SIGINT))
            self.reply({})
        elif action == "signal":
            await kernels.signal(kid, self.user, parse_signal(self.body().get("signal")))
            self.reply({})
        elif action == "restart":
            k = await kernels.restart(kid, self.user, self.wait_arg(120.0))
            self.reply(kernel_view(k))
        else:
            raise not_found("action", action)


class AgentsHandler(BaseHandler):
    async def get(self) -> None:
        self.reply({"agents": self.manager.agent_views()})


class ImagesHandler(BaseHandler):
    async def get(self) -> None:
        self.reply({"images": sorted(self.manager.agents.catalog().values(), key=lambda i: i["name"])})


class UsersHandler(BaseHandler):
    async def get(self) -> None:
        if not self.user["is_admin"]:
            raise ApiError(403, "forbidden", "listing users needs an admin token")
        self.reply({"users": await self.manager.store.list_users()})

    async def post(self) -> None:
        """Create a user (admin only) and return its first token."""
        if not self.user["is_admin"]:
            raise ApiError(403, "forbidden", "creating users needs an admin token")
        body = self.body()
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise ApiError(400, "bad_request", "'name' (1-64 characters) is required")
        idle_timeout = idle_timeout_arg(body)
        await self.manager.store.add_user(name, bool(body.get("admin", False)))
        if "idle_timeout" in body:
            await self.manager.kernels.set_idle_timeout(name, idle_timeout)
        token = await issue_token(self.manager.store, name, "created by " + self.user["name"])
        self.reply({"name": name, "admin": bool(body.get("admin", False)), "token": token,
                    "idle_timeout": idle_timeout}, 201)


def idle_timeout_arg(body: dict[str, Any]) -> float | None:
    raw = body.get("idle_timeout")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0:
        raise ApiError(400, "bad_request", "'idle_timeout' must be seconds >= 0 (0: never cull), or null for the default")
    return float(raw)


class UserHandler(BaseHandler):
    async def patch(self, name: str) -> None:
        """Set a user's policy (admin only): ``idle_timeout`` in seconds, null for the default."""
        if not self.user["is_admin"]:
            raise ApiError(403, "forbidden", "changing a user's policy needs an admin token")
        body = self.body()
        unknown = set(body) - {"idle_timeout"}
        if unknown:
            raise ApiError(400, "bad_request", f"unknown policy fields: {', '.join(sorted(unknown))}")
        idle_timeout = idle_timeout_arg(body)
        if not await self.manager.kernels.set_idle_timeout(name, idle_timeout):
            raise not_found("user", name)
        self.reply({"name": name, "idle_timeout": idle_timeout})


class TokensHandler(BaseHandler):
    async def post(self) -> None:
        token = await issue_token(self.manager.store, self.user["name"], str(self.body().get("label", "")))
        self.reply({"user": self.user["name"], "token": token}, 201)


class WhoAmIHandler(BaseHandler):
    async def get(self) -> None:
        self.reply({"name": self.user["name"], "admin": self.user["is_admin"], "version": __version__})


class MetricsHandler(web.RequestHandler):
    def get(self) -> None:
        metrics.observe_agents(a.status for a in self.settings["manager"].agents.agents.values())
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(metrics.REGISTRY))


class NotFoundHandler(BaseHandler):
    async def prepare(self) -> None:
        raise ApiError(404, "not_found", f"no such endpoint: {self.request.method} {self.request.path}")


def make_app(manager: Any) -> web.Application:
    kid = r"([^/]+)"
    return web.Application([
        (r"/api/v1/kernels/?", KernelsHandler),
        (rf"/api/v1/kernels/{kid}/?", KernelHandler),
        (rf"/api/v1/kernels/{kid}/(interrupt|signal|restart|[a-z]+)", KernelActionHandler),
        (r"/api/v1/agents/?", AgentsHandler),
        (r"/api/v1/images/?", ImagesHandler),
        (r"/api/v1/users/?", UsersHandler),
        (r"/api/v1/users/([^/]+)/?", UserHandler),
        (r"/api/v1/tokens/?", TokensHandler),
        (r"/api/v1/whoami/?", WhoAmIHandler),
        (r"/metrics", MetricsHandler),
    ], default_handler_class=NotFoundHandler, manager=manager)
