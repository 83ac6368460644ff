# SPDX-License-Identifier: LGPL-3.0-or-later
"""The remote gateway: a jupyter_server extension whose kernels run on Backend.AI.

Jupyter Server keeps doing what it does (REST, sessions, websocket bridging, auth plumbing);
this package only swaps in the parts that make it Backend.AI's: who a request is (a
Backend.AI token), which kernels a user sees (their own), where kernels come from (the
manager's image catalog, through the provisioner) and what survives a restart (the kernels).
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import GatewayApp

    return [{"module": "jupyter_backendai.gateway", "app": GatewayApp}]
