#!/usr/bin/env bash
# Make a Docker engine answer on this machine: install Debian's docker.io when the engine is
# missing (root only), start dockerd in the background, and wait until `docker info` answers.
# Exits 0 when the engine answers, 1 (with one clear line) when it cannot be had.
set -u
log=${DOCKERD_LOG:-/var/log/jupyter-backendai-dockerd.log}

answers() { timeout 10 docker info >/dev/null 2>&1; }

if answers; then exit 0; fi

if [ "$(id -u)" != 0 ]; then
  echo "ensure-docker: no Docker engine answers and this user is not root: start dockerd yourself" >&2
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-docker: installing Debian's docker.io ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends \
      docker.io iptables ca-certificates >/dev/null \
    || { echo "ensure-docker: apt-get install docker.io failed" >&2; exit 1; }
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "ensure-docker: starting dockerd (log: $log)" >&2
  # setsid: dockerd must outlive the shell (and the test session) that started it.
  setsid dockerd >"$log" 2>&1 < /dev/null &
fi

for _ in $(seq 1 120); do
  if answers; then exit 0; fi
  sleep 0.5
done
echo "ensure-docker: dockerd did not answer within 60 s; see $log" >&2
exit 1
