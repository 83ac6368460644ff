#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-3.0-or-later
# The browser-side test tools: the pinned npm packages of tests/js (@jupyterlab/services, ws,
# playwright-core) and Debian's Chromium for JupyterLab tests. Called by setup.sh; cached, so a
# re-run costs next to nothing. What cannot be had is said, not hidden: the tests needing it fail.
set -euo pipefail
cd "$(dirname "$0")/.."
JS=tests/js

if command -v node >/dev/null && command -v npm >/dev/null; then
  stamp="$JS/node_modules/.installed-$(cat "$JS/package.json" "$JS/package-lock.json" | sha256sum | cut -c1-16)"
  if [ ! -e "$stamp" ]; then
    echo "setup: npm ci in $JS" >&2
    if (cd "$JS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
      touch "$stamp"
    else
      echo "setup: npm ci failed in $JS: the tests that need it will fail" >&2
    fi
  fi
else
  echo "setup: no node/npm: the @jupyterlab/services and JupyterLab browser tests cannot run" >&2
fi

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's chromium (headless JupyterLab tests)" >&2
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -q && apt-get install -y -q --no-install-recommends chromium fonts-liberation; } \
      >/tmp/backendai-setup-chromium.log 2>&1 \
      || { tail -20 /tmp/backendai-setup-chromium.log >&2; echo "setup: installing chromium failed: the JupyterLab browser test will fail" >&2; }
  else
    echo "setup: no /usr/bin/chromium (install Debian's chromium as root): the JupyterLab browser test cannot run" >&2
  fi
fi
