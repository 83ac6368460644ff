# SPDX-License-Identifier: LGPL-3.0-or-later
"""Files per user: each Backend.AI user's /api/contents is their own folder under root_dir.

jupyter_server serves one root_dir to everyone it authenticates; on a gateway shared by many
users that would let any token read and overwrite everyone's notebooks. Every API path is
resolved beneath ``<root_dir>/users/<user>/`` instead, checkpoints included, and the
traversal checks of FileContentsManager hold against that folder.
"""

from __future__ import annotations

import hashlib
import os
import re

from jupyter_server.services.contents.filecheckpoints import AsyncFileCheckpoints
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web
from traitlets import default

from .identity import current_user

_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")


def user_folder(user: str) -> str:
    """A folder name for a user: the name itself when it is plain, else a readable hash."""
    if _PLAIN.match(user):
        return user
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", user).lstrip(".")[:32]
    return f"{slug}-{hashlib.sha256(user.encode()).hexdigest()[:12]}"


class _PerUser:
    root_dir: str

    def _user_root(self) -> str:
        user = current_user.get()
        if not user:
            raise web.HTTPError(403, "files belong to a Backend.AI user; this request has none")
        root = os.path.join(os.path.abspath(self.root_dir), "users", user_folder(user))
        os.makedirs(root, mode=0o700, exist_ok=True)
        return root

    def _get_os_path(self, path: str) -> str:
        root = self._user_root()
        os_path = os.path.abspath(os.path.join(root, *path.strip("/").split("/"))) if path.strip("/") else root
        if not (os_path + os.sep).startswith(root + os.sep):
            raise web.HTTPError(404, f"{path} is outside the user's folder")
        return os_path


class PerUserContentsManager(_PerUser, AsyncLargeFileManager):  # type: ignore[misc]
    @default("checkpoints_class")
    def _per_user_checkpoints(self) -> type:
        return PerUserCheckpoints


class PerUserCheckpoints(_PerUser, AsyncFileCheckpoints):  # type: ignore[misc]
    pass
