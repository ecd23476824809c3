#!/usr/bin/env bash
# Starts the embedded registry on a free loopback port with a fresh data directory, runs the OCI conformance suite
# (both pinned versions) and the real-client round trips (skopeo, oras, crane) against it, and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
data="$(mktemp -d)"
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
log="$data/registry.log"
LADING_DATA_DIR="$data/data" LADING_HTTP_ADDR="127.0.0.1:$port" LADING_LOG_ACCESS=false node --import tsx services/embedded/src/main.ts >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "the registry exited during start-up:"; cat "$log"; exit 1; }
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null || { echo "the registry did not start:"; cat "$log"; exit 1; }
echo "registry up on 127.0.0.1:$port"

rc=0
CONFORMANCE_AUTOMATIC_CROSSMOUNT=1 bash tools/conformance/run.sh "http://127.0.0.1:$port" || rc=1
bash tools/clients/install.sh || rc=1
bash tools/clients/roundtrip.sh "127.0.0.1:$port" || rc=1
if grep -q '"level":50' "$log"; then
  echo "the registry logged errors during the end-to-end run:"; grep '"level":50' "$log" | head -20; rc=1
fi
exit "$rc"
