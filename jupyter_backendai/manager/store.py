"""The manager's state: users, tokens, agents and kernels in SQLite, off the event loop.

All statements run on one dedicated thread (SQLite connections belong to a thread, and one
writer avoids lock contention); callers await them. The file survives a manager restart, which
is what lets running kernels outlive the manager.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    idle_timeout REAL              -- seconds before an idle kernel is culled; NULL: the default
);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    label TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY,
    info TEXT NOT NULL,            -- JSON: capacity, labels, images, runtime, advertise_ip
    status TEXT NOT NULL,          -- ALIVE | LOST
    last_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS kernels (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    image TEXT NOT NULL,
    status TEXT NOT NULL,          -- PENDING | CREATING | RUNNING | EXITED | LOST
    agent_id TEXT,
    name TEXT,                     -- the agent's name for it (container label)
    resources TEXT NOT NULL,       -- JSON slots
    spec TEXT NOT NULL,            -- JSON: env, argv, constraints
    connection TEXT,               -- JSON connection info once RUNNING
    exit_code INTEGER,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS kernels_agent ON kernels(agent_id);
"""

KERNEL_JSON = ("resources", "spec", "connection")


def _kernel_row(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    d = dict(row)
    for k in KERNEL_JSON:
        d[k] = json.loads(d[k]) if d[k] else None
    return d


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._db: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._db is not None
            with self._db:  # one transaction per call
                return fn(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def open(self) -> None:
        def _open() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(SCHEMA)
            columns = {r[1] for r in db.execute("PRAGMA table_info(users)")}
            if "idle_timeout" not in columns:  # a state dir from before culling existed
                db.execute("ALTER TABLE users ADD COLUMN idle_timeout REAL")
            self._db = db

        await asyncio.get_running_loop().run_in_executor(self._pool, _open)

    async def close(self) -> None:
        def _close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._pool, _close)
        self._pool.shutdown(wait=True)

    # ----- users and tokens --------------------------------------------------------------

    async def add_user(self, name: str, is_admin: bool) -> None:
        await self._run(lambda db: db.execute(
            "INSERT INTO users(name, is_admin, created) VALUES(?,?,?) "
            "ON CONFLICT(name) DO UPDATE SET is_admin=excluded.is_admin", (name, int(is_admin), time.time())))

    async def add_token(self, token_hash: str, user: str, label: str = "") -> None:
        await self._run(lambda db: db.execute(
            "INSERT INTO tokens(hash, user, label, created) VALUES(?,?,?,?)", (token_hash, user, label, time.time())))

    async def user_for_token(self, token_hash: str) -> dict[str, Any] | None:
        def q(db: sqlite3.Connection) -> dict[str, Any] | None:
            row = db.execute("SELECT u.name, u.is_admin FROM tokens t JOIN users u ON u.name = t.user "
                             "WHERE t.hash = ?", (token_hash,)).fetchone()
            return dict(row) if row else None

        return await self._run(q)

    async def list_users(self) -> list[dict[str, Any]]:
        return await self._run(lambda db: [dict(r) for r in db.execute(
            "SELECT name, is_admin, created, idle_timeout FROM users ORDER BY name")])

    async def set_idle_timeout(self, name: str, seconds: float | None) -> bool:
        """False if there is no such user."""
        return await self._run(lambda db: db.execute(
            "UPDATE users SET idle_timeout = ? WHERE name = ?", (seconds, name)).rowcount == 1)

    # ----- agents ------------------------------------------------------------------------

    async def upsert_agent(self, agent_id: str, info: dict[str, Any], status: str) -> None:
        await self._run(lambda db: db.execute(
            "INSERT INTO agents(id, info, status, last_seen) VALUES(?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
            "info=excluded.info, status=excluded.status, last_seen=excluded.last_seen",
            (agent_id, json.dumps(info), status, time.time())))

    async def set_agent_status(self, agent_id: str, status: str) -> None:
        await self._run(lambda db: db.execute("UPDATE agents SET status=? WHERE id=?", (status, agent_id)))

    async def list_agents(self) -> list[dict[str, Any]]:
        def q(db: sqlite3.Connection) -> list[dict[str, Any]]:
            out = []
            for r in db.execute("SELECT * FROM agents ORDER BY id"):
                d = dict(r)
                d["info"] = json.loads(d["info"])
                out.append(d)
            return out

        return await self._run(q)

    # ----- kernels -----------------------------------------------------------------------

    async def add_kernel(self, kid: str, owner: str, image: str, resources: dict[str, Any], spec: dict[str, Any]) -> None:
        now = time.time()
        await self._run(lambda db: db.execute(
            "INSERT INTO kernels(id, owner, image, status, resources, spec, created, updated) "
            "VALUES(?,?,?,?,?,?,?,?)", (kid, owner, image, "PENDING", json.dumps(resources), json.dumps(spec), now, now)))

    async def update_kernel(self, kid: str, **fields: Any) -> None:
        for k in KERNEL_JSON:
            if k in fields and fields[k] is not None:
                fields[k] = json.dumps(fields[k])
        fields["updated"] = time.time()
        cols = ", ".join(f"{k}=?" for k in fields)
        await self._run(lambda db: db.execute(f"UPDATE kernels SET {cols} WHERE id=?", (*fields.values(), kid)))

    async def delete_kernel(self, kid: str) -> None:
        await self._run(lambda db: db.execute("DELETE FROM kernels WHERE id=?", (kid,)))

    async def get_kernel(self, kid: str) -> dict[str, Any] | None:
        return await self._run(lambda db: _kernel_row(db.execute("SELECT * FROM kernels WHERE id=?", (kid,)).fetchone()))

    async def list_kernels(self, owner: str | None = None) -> list[dict[str, Any]]:
        def q(db: sqlite3.Connection) -> list[dict[str, Any]]:
            if owner is None:
                rows = db.execute("SELECT * FROM kernels ORDER BY created")
            else:
                rows = db.execute("SELECT * FROM kernels WHERE owner=? ORDER BY created", (owner,))
            return [_kernel_row(r) for r in rows]  # type: ignore[misc]

        return await self._run(q)
