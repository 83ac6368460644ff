# SPDX-License-Identifier: LGPL-3.0-or-later
"""Sessions per user: another user's session is not found, exactly as their kernel is not."""

from __future__ import annotations

from typing import Any

from jupyter_server.services.sessions.sessionmanager import SessionManager

from .identity import current_user


class BackendAISessionManager(SessionManager):  # type: ignore[misc]
    async def list_sessions(self) -> list[dict[str, Any]]:
        # Adopt first: a kernel this process has not seen yet (after a restart) is not "culled".
        await self.kernel_manager.adopt_running()
        return await super().list_sessions()

    async def row_to_model(self, row: Any, tolerate_culled: bool = False) -> dict[str, Any] | None:
        user = current_user.get()
        owner = self.kernel_manager.owner_of(row["kernel_id"])
        if user is not None and owner is not None and owner != user:
            raise KeyError(f"Session not found: {row['session_id']}")
        return await super().row_to_model(row, tolerate_culled=tolerate_culled)
