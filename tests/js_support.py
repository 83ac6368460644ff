# SPDX-License-Identifier: LGPL-3.0-or-later
"""Node.js clients of the gateway tests: tests/js, its packages pinned in package-lock.json and
installed by scripts/setup-js.sh (which setup.sh runs)."""

from __future__ import annotations

import shutil

import pytest

from conftest import ROOT

JS = ROOT / "tests" / "js"


def node_or_fail() -> str:
    """The machine's node with the pinned packages; missing ones fail (setup installs them)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("no `node` on PATH (Node.js 20+ runs the gateway's JavaScript clients)")
    if not (JS / "node_modules" / "@jupyterlab" / "services").is_dir():
        pytest.fail("tests/js/node_modules is missing: run scripts/setup.sh (it runs scripts/setup-js.sh)")
    return node
