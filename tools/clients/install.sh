#!/usr/bin/env bash
# Idempotently install the registry clients used by roundtrip.sh:
#   skopeo  (Debian package, via apt-get when missing and running as root)
#   oras    (go install oras.land/oras/cmd/oras@$ORAS_VERSION)
#   crane   (go install github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION)
# Go binaries land in $CLIENTS_BIN (default tools/clients/.cache/bin, git-ignored);
# a version stamp next to each binary makes a second run instant.
# On failure prints one sentence naming what is missing and exits non-zero.
set -euo pipefail

ORAS_VERSION="v1.3.6"
CRANE_VERSION="v0.22.1"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLIENTS_BIN="${CLIENTS_BIN:-$HERE/.cache/bin}"
QUIET="${1:-}"

say() { [ "$QUIET" = "-q" ] || echo "install: $*"; }
die() { echo "install: $*" >&2; exit 1; }

mkdir -p "$CLIENTS_BIN" || die "cannot create the tool cache directory $CLIENTS_BIN."

for t in python3 curl sha256sum cmp; do
  command -v "$t" >/dev/null 2>&1 || die "required command '$t' is missing; install it (e.g. apt-get install -y python3 curl coreutils diffutils)."
done

# --- skopeo (system package) -------------------------------------------------
if ! command -v skopeo >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    say "installing skopeo with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q skopeo >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q skopeo >/dev/null 2>&1; } \
      || die "skopeo is missing and 'apt-get install -y skopeo' failed; install the Debian package skopeo."
  else
    die "skopeo is missing; install the Debian package skopeo (apt-get install -y skopeo, as root)."
  fi
fi
say "skopeo $(skopeo --version | awk '{print $3}') ($(command -v skopeo))"

# --- oras / crane (go install, pinned) --------------------------------------
go_tool() { # name module version
  local name="$1" module="$2" version="$3"
  local bin="$CLIENTS_BIN/$name" stamp="$CLIENTS_BIN/.$name.version"
  if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$module@$version" ]; then
    say "$name $version (cached in $CLIENTS_BIN)"
    return 0
  fi
  command -v go >/dev/null 2>&1 \
    || die "$name $version is not installed and the Go toolchain ('go') needed to build it is missing."
  say "building $name $version with go install (first run takes ~1 minute)"
  local log; log="$(mktemp)"
  if ! GOBIN="$CLIENTS_BIN" GOFLAGS="${GOFLAGS:--buildvcs=false}" \
       go install "$module@$version" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    die "$name could not be installed: 'go install $module@$version' failed (is the Go module proxy reachable?)."
  fi
  rm -f "$log"
  echo "$module@$version" >"$stamp"
  say "$name $version installed in $CLIENTS_BIN"
}

# Build both in parallel (2 cores; each build is mostly single-threaded linking).
go_tool oras oras.land/oras/cmd/oras "$ORAS_VERSION" &
p1=$!
go_tool crane github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION" &
p2=$!
rc=0
wait "$p1" || rc=1
wait "$p2" || rc=1
exit "$rc"
