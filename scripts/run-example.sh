#!/usr/bin/env bash
# The main job: start the embedded default (`jupyter backendai up`), install the kernelspec,
# execute examples/hello.ipynb on a "Python 3 (Backend.AI)" kernel and print its outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
NOTEBOOK=${1:-examples/hello.ipynb}

jupyter-backendai kernelspec install --user >/dev/null
log=$(mktemp -t backendai-up.XXXXXX.log)
jupyter-backendai up >"$log" 2>&1 &
up_pid=$!
trap 'kill $up_pid 2>/dev/null; wait $up_pid 2>/dev/null || true' EXIT

# `up` writes the runtime connection file once the manager and its agent are ready.
conn="$(jupyter --runtime-dir)/backendai-manager.json"
for _ in $(seq 1 600); do
  [ -s "$conn" ] && grep -q "\"pid\": $up_pid" "$conn" && break
  kill -0 $up_pid 2>/dev/null || { cat "$log"; echo "jupyter backendai up exited" >&2; exit 1; }
  sleep 0.1
done
grep -E "^runtime:" "$log" || true
jupyter-backendai run "$NOTEBOOK" -o "${NOTEBOOK%.ipynb}.out.ipynb"
