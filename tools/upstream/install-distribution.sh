#!/usr/bin/env bash
# Idempotently install CNCF Distribution v3 (the `registry` binary), the real upstream that the pull-through cache
# specs run against: `go install github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_VERSION`
# through the Go module proxy, into ${XDG_CACHE_HOME:-$HOME/.cache}/lading/distribution-<version>/registry.
# The install is atomic (built in a temp dir, renamed into place), so concurrent runs and a killed run leave either
# nothing or a whole binary; a second run costs a stat. Prints the binary's path on stdout, progress on stderr.
# On failure prints one sentence naming what is missing and exits non-zero.
set -euo pipefail

DISTRIBUTION_VERSION="${DISTRIBUTION_VERSION:-v3.0.0}"
MODULE="github.com/distribution/distribution/v3/cmd/registry"
DIR="${XDG_CACHE_HOME:-$HOME/.cache}/lading/distribution-$DISTRIBUTION_VERSION"
BIN="$DIR/registry"

if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

command -v go >/dev/null 2>&1 \
  || { echo "install-distribution: Distribution $DISTRIBUTION_VERSION is not installed and the Go toolchain ('go') needed to build it is missing." >&2; exit 1; }

mkdir -p "$(dirname "$DIR")"
TMP="$(mktemp -d "$(dirname "$DIR")/.distribution-build.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
echo "install-distribution: building $MODULE@$DISTRIBUTION_VERSION with go install (first run takes a few minutes)" >&2
if ! GOBIN="$TMP/bin" GOFLAGS="${GOFLAGS:--buildvcs=false}" go install "$MODULE@$DISTRIBUTION_VERSION" >"$TMP/log" 2>&1; then
  cat "$TMP/log" >&2
  echo "install-distribution: 'go install $MODULE@$DISTRIBUTION_VERSION' failed (is the Go module proxy reachable?)." >&2
  exit 1
fi
mkdir -p "$TMP/out" && mv "$TMP/bin/registry" "$TMP/out/registry"
# rename(2) of the whole directory: another run that won the race leaves its copy in place.
mv -T "$TMP/out" "$DIR" 2>/dev/null || true
[ -x "$BIN" ] || { echo "install-distribution: $BIN is missing after the build." >&2; exit 1; }
echo "$BIN"
