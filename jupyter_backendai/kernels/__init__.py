# SPDX-License-Identifier: LGPL-3.0-or-later
"""The in-container REPL wrapper kernel and its language profiles.

``python -m jupyter_backendai.kernels --profile LANG -f CONNECTION_FILE`` runs an ipykernel
``Kernel`` that drives a small program written in LANG (``drivers/``) over framed JSON on
dedicated file descriptors. This package depends on nothing else of jupyter_backendai, so an
image can carry it alone.
"""
