#!/usr/bin/env bash
# The test suite: real Docker engine, real Jupyter clients. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec python -m pytest -ra -p no:cacheprovider "$@"
