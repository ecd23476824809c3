#!/usr/bin/env bash
# A private Docker daemon for the docker round trips (docker.sh), started and stopped by the test that uses it.
#
#   eval "$(tools/clients/dockerd.sh start)"   # prints DOCKER_HOST=... DOCKERD_DIR=... DOCKER_TLS_NAME=...
#   tools/clients/dockerd.sh stop "$DOCKERD_DIR"
#   DOCKERD_REGISTRY_MIRROR=http://127.0.0.1:<port> tools/clients/dockerd.sh start   # with --registry-mirror
#
# Debian's docker.io daemon (installed with apt-get when dockerd is missing; needs root) runs on a socket in a temp
# dir with the vfs storage driver, no bridge and no iptables, its data and state in that dir, which `stop` removes.
# It runs in a mount namespace of its own whose /etc/hosts also maps DOCKER_TLS_NAME (registry.lading.test) to ::1:
# dockerd treats every registry in 127.0.0.0/8 as insecure (it skips certificate checks there and falls back to
# plain HTTP), so the TLS round trip reaches the registry by that name, through loopback-relay.ts, as a secure
# registry whose certificate dockerd verifies. Nothing outside the daemon sees the name.
set -euo pipefail
# shellcheck source=tools/clients/daemon-package.sh
. "$(dirname "${BASH_SOURCE[0]}")/daemon-package.sh"

DOCKER_TLS_NAME=registry.lading.test
die() { echo "dockerd.sh: $*" >&2; exit 1; }

ensure_dockerd() {
  command -v dockerd >/dev/null 2>&1 && return 0
  install_daemon_package dockerd.sh docker.io
}

start() {
  [ "$(id -u)" = 0 ] || die "the Docker daemon needs root (run the tests as root, as CI does)."
  ensure_dockerd
  command -v unshare >/dev/null 2>&1 || die "unshare (util-linux) is missing."
  local dir; dir="$(mktemp -d /tmp/lading-dockerd.XXXXXX)"
  { cat /etc/hosts; echo "::1 $DOCKER_TLS_NAME"; } >"$dir/hosts"
  # The mount namespace is private: the bind mount of /etc/hosts (and every mount dockerd makes) stays inside it
  # and goes away with the daemon.
  # DOCKERD_REGISTRY_MIRROR: Docker Hub pulls go to that registry first (docker-mirror.sh tests Lading's `mirror`).
  local mirror=()
  [ -z "${DOCKERD_REGISTRY_MIRROR:-}" ] || mirror=("--registry-mirror=$DOCKERD_REGISTRY_MIRROR")
  unshare --mount --propagation private sh -c 'd="$1"; shift; mount --bind "$d/hosts" /etc/hosts && exec dockerd \
      --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
      -H "unix://$d/d.sock" --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/d.pid" "$@"' _ "$dir" "${mirror[@]}" \
    >"$dir/dockerd.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  local pid=$!
  for _ in $(seq 1 120); do
    [ -S "$dir/d.sock" ] && DOCKER_HOST="unix://$dir/d.sock" "$(docker_cli)" version >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { echo "dockerd.sh: dockerd exited during start-up:" >&2; tail -n 20 "$dir/dockerd.log" >&2; rm -rf "$dir"; exit 1; }
    sleep 0.25
  done
  DOCKER_HOST="unix://$dir/d.sock" "$(docker_cli)" version >/dev/null 2>&1 \
    || { echo "dockerd.sh: dockerd did not answer on $dir/d.sock within 30 s:" >&2; tail -n 20 "$dir/dockerd.log" >&2; stop "$dir"; exit 1; }
  echo "DOCKER_HOST=unix://$dir/d.sock DOCKERD_DIR=$dir DOCKER_TLS_NAME=$DOCKER_TLS_NAME"
}

stop() { # dir
  local dir="$1" pid children
  case "$dir" in /tmp/lading-dockerd.*) ;; *) die "not a directory of dockerd.sh start: $dir" ;; esac
  [ -d "$dir" ] || return 0
  pid="$(cat "$dir/pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    children="$(pgrep -P "$pid" || true)"   # its containerd, which it stops itself unless it has to be killed
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    # shellcheck disable=SC2086
    kill -9 "$pid" $children 2>/dev/null || true
  fi
  rm -rf "$dir"
}

# The client from the daemon's own package: /usr/local/bin/docker, say, may be another version.
docker_cli() { if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker; fi; }

case "${1:-}" in
  start) start ;;
  stop) [ -n "${2:-}" ] || die "usage: dockerd.sh stop <dir>"; stop "$2" ;;
  cli) docker_cli ;;
  *) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
