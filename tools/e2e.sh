#!/usr/bin/env bash
# Starts the embedded registry on a free loopback port with a fresh data directory, runs the OCI conformance suite
# (both pinned versions) and the real-client round trips (skopeo, oras, crane) against it, and stops it; then the
# same with token auth on, every client logging in through the token flow.
set -euo pipefail
cd "$(dirname "$0")/.."
# The registry runs on Node.js 24 (package.json engines), also when this is run on its own.
node_path="$(tools/node/ensure-node24 --path)" # its own statement, so that set -e stops on a failed install
eval "$node_path"
bash tools/clients/install.sh >/dev/null
# The registry runs as `npm start` runs it: the bundle of services/embedded (tools/build/bundle.ts).
npm run -s build -- embedded
read -r -a START <<<"$(npm run -s build -- --start-command)"

ADMIN_USER=e2e-admin
ADMIN_PASSWORD="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
rc=0

run_registry() { # label, then extra environment assignments
  local label="$1"; shift
  local data port log pid
  data="$(mktemp -d)"
  port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
  log="$data/registry.log"
  env LADING_DATA_DIR="$data/data" LADING_HTTP_ADDR="127.0.0.1:$port" LADING_LOG_ACCESS=false "$@" \
    "${START[@]}" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 120); do
    curl -sS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { echo "the registry exited during start-up:"; cat "$log"; rc=1; return; }
    sleep 0.5
  done
  echo "embedded registry ($label) up on 127.0.0.1:$port"
  CONFORMANCE_AUTOMATIC_CROSSMOUNT="$CROSSMOUNT" CONFORMANCE_LABEL="$label" bash tools/conformance/run.sh "http://127.0.0.1:$port" || rc=1
  bash tools/clients/roundtrip.sh "127.0.0.1:$port" || rc=1
  if grep -q '"level":50' "$log"; then
    echo "the registry ($label) logged errors:"; grep '"level":50' "$log" | head -20; rc=1
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}

# Auth off (the default): a mount without `from` finds the blob in any repository (201).
CROSSMOUNT=1 run_registry embedded
# Auth on: a mount without `from` cannot prove the caller may read the source, so it opens a session (202).
CROSSMOUNT=0 OCI_USERNAME="$ADMIN_USER" OCI_PASSWORD="$ADMIN_PASSWORD" REGISTRY_USERNAME="$ADMIN_USER" REGISTRY_PASSWORD="$ADMIN_PASSWORD" \
  run_registry embedded-auth LADING_AUTH_ENABLED=true LADING_ADMIN_USER="$ADMIN_USER" LADING_ADMIN_PASSWORD="$ADMIN_PASSWORD"
exit "$rc"
