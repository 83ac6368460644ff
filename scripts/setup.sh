#!/usr/bin/env bash
# Prepare this checkout: a virtualenv with the project and its test tools, a Docker engine
# when one can be had (else say so: the process runtime still works), and the kernel image.
# Sourced by run-example.sh and test.sh; safe to run again (everything is cached).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${BACKENDAI_VENV:-$ROOT/.venv}

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  echo "setup: installing jupyter-backendai[dev] into $VENV" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[dev]" >"$VENV/install.log" 2>&1 \
    || { cat "$VENV/install.log" >&2; echo "setup: pip install failed" >&2; exit 1; }
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"

bash scripts/setup-js.sh

if bash scripts/ensure-docker.sh; then
  export BACKENDAI_DOCKER=1
  jupyter-backendai images build   # every language in images/
else
  export BACKENDAI_DOCKER=0
  echo "setup: no Docker engine: kernels will run on the process runtime" >&2
fi
