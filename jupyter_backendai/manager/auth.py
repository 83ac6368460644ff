"""Bearer tokens: random, shown once, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from .store import Store


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_from_header(header: str | None, query_token: str | None = None) -> str | None:
    """Accept ``Authorization: Bearer X`` or ``token X`` (as Jupyter clients send it), or ?token=."""
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("bearer", "token") and value.strip():
            return value.strip()
    return query_token or None


async def issue_token(store: Store, user: str, label: str = "") -> str:
    # Lowercase hex (256 bits): a token in a URL survives clients that lowercase it, as
    # jupyter_server's GatewayClient does when it derives its websocket URL from the gateway's.
    token = secrets.token_hex(32)
    await store.add_token(hash_token(token), user, label)
    return token


async def authenticate(store: Store, token: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    user = await store.user_for_token(hash_token(token))
    if user is not None:
        user["is_admin"] = bool(user["is_admin"])
    return user
