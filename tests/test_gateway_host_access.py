# SPDX-License-Identifier: LGPL-3.0-or-later
"""A Backend.AI token buys kernels in containers, never a shell on the gateway's host: jupyter_server
brings its terminals along (jupyter_server_terminals is one of its dependencies), the gateway
switches them off."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Cluster
from gateway_support import Gateway, new_user

pytestmark = pytest.mark.docker


def test_no_terminals_on_the_gateway_host(cluster: Cluster, tmp_path: Path) -> None:
    g = Gateway(cluster, tmp_path / "gateway").start()
    try:
        _, token = new_user(cluster, "noshell")
        assert g.api("GET", "api/kernels", token).status_code == 200
        for method in ("GET", "POST"):
            r = g.api(method, "api/terminals", token)
            assert r.status_code == 404, (method, r.status_code, r.text[:300])
    finally:
        g.stop()
