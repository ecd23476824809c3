#!/usr/bin/env bash
# Validate roundtrip.sh itself against CNCF Distribution (Debian package
# docker-registry): start it on 127.0.0.1:${DIST_PORT:-5066} with deletes enabled
# and filesystem storage in a temp dir, run roundtrip.sh, stop it.
# Distribution 2.8 has no OCI 1.1 referrers API, so REFERRERS_API=auto is used
# (that check prints "skip"; the referrers tag-schema fallback is checked instead).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${DIST_PORT:-5066}"

if ! command -v docker-registry >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-registry >/dev/null 2>&1 \
      || { echo "distribution: 'apt-get install -y docker-registry' failed; install the Debian package docker-registry." >&2; exit 2; }
    # The package may start its own service (on :5000); we run our own instance instead.
    if command -v systemctl >/dev/null 2>&1; then systemctl stop docker-registry >/dev/null 2>&1 || true; fi
    service docker-registry stop >/dev/null 2>&1 || true
  else
    echo "distribution: docker-registry is missing; install the Debian package docker-registry." >&2
    exit 2
  fi
fi

D="$(mktemp -d "${TMPDIR:-/tmp}/lading-distribution.XXXXXX")"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT

cat >"$D/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $D/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
EOF

docker-registry serve "$D/config.yml" >"$D/registry.log" 2>&1 &
PID=$!
for _ in $(seq 50); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/v2/" && break
  kill -0 "$PID" 2>/dev/null || { cat "$D/registry.log" >&2; echo "distribution: docker-registry exited (port $PORT busy?)." >&2; exit 2; }
  sleep 0.1
done
echo "distribution: $(docker-registry --version) on 127.0.0.1:$PORT (storage $D/data)"

set +e
REFERRERS_API="${REFERRERS_API:-auto}" "$HERE/roundtrip.sh" "127.0.0.1:$PORT"
rc=$?
exit "$rc"
