#!/usr/bin/env bash
# A private containerd for the containerd round trips through the pull-through cache (pull-through.sh), started and
# stopped by the test that uses it.
#
#   eval "$(tools/clients/containerd.sh start)"   # prints CONTAINERD_ADDRESS=... CONTAINERD_DIR=...
#   tools/clients/containerd.sh stop "$CONTAINERD_DIR"
#
# Debian's containerd (installed with apt-get when containerd or ctr is missing; needs root) runs on a socket in a
# temp dir, its root, state and plugin dirs in that dir, which `stop` removes, in a mount namespace of its own, with
# the CRI plugin off: only the content store, the image store and the native snapshotter are used (ctr pulls with
# `--snapshotter native`, which unpacks by copying, so nothing is mounted).
set -euo pipefail
# shellcheck source=tools/clients/daemon-package.sh
. "$(dirname "${BASH_SOURCE[0]}")/daemon-package.sh"

die() { echo "containerd.sh: $*" >&2; exit 1; }

ensure_containerd() {
  command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1 && return 0
  install_daemon_package containerd.sh containerd
}

start() {
  [ "$(id -u)" = 0 ] || die "containerd needs root (run the tests as root, as CI does)."
  ensure_containerd
  command -v unshare >/dev/null 2>&1 || die "unshare (util-linux) is missing."
  local dir; dir="$(mktemp -d /tmp/lading-containerd.XXXXXX)"
  cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/c.sock"
[ttrpc]
  address = "$dir/c.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
EOF
  unshare --mount --propagation private containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/pid"
  for _ in $(seq 1 120); do
    [ -S "$dir/c.sock" ] && ctr --address "$dir/c.sock" version >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { echo "containerd.sh: containerd exited during start-up:" >&2; tail -n 20 "$dir/containerd.log" >&2; rm -rf "$dir"; exit 1; }
    sleep 0.25
  done
  ctr --address "$dir/c.sock" version >/dev/null 2>&1 \
    || { echo "containerd.sh: containerd did not answer on $dir/c.sock within 30 s:" >&2; tail -n 20 "$dir/containerd.log" >&2; stop "$dir"; exit 1; }
  echo "CONTAINERD_ADDRESS=$dir/c.sock CONTAINERD_DIR=$dir"
}

stop() { # dir
  local dir="$1" pid
  case "$dir" in /tmp/lading-containerd.*) ;; *) die "not a directory of containerd.sh start: $dir" ;; esac
  [ -d "$dir" ] || return 0
  pid="$(cat "$dir/pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) [ -n "${2:-}" ] || die "usage: containerd.sh stop <dir>"; stop "$2" ;;
  *) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
