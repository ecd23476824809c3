#!/usr/bin/env bash
# Starts the embedded registry on a free loopback port with a fresh data directory, runs the OCI conformance suite
# (both pinned versions) and the real-client round trips (skopeo, oras, crane, docker) against it, restarts it on
# the same data serving TLS only (http.tls.*, a test CA's certificate) for the Docker client once more, and stops it;
# then the same with token auth on, every client logging in through the token flow.
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
# One private Docker daemon for the stage (tools/clients/dockerd.sh), and a test CA whose certificate the registry
# serves in the TLS runs; both go away when the stage ends. Without a daemon the stage fails, once, and the other
# clients still run.
DOCKERD_DIR="" TLS_DIR=""
trap '[ -z "$DOCKERD_DIR" ] || bash tools/clients/dockerd.sh stop "$DOCKERD_DIR"; rm -rf "$TLS_DIR"' EXIT
if daemon="$(bash tools/clients/dockerd.sh start)"; then
  eval "$daemon"; export DOCKER_HOST DOCKER_TLS_NAME
  TLS_DIR="$(mktemp -d)"
  node --import tsx tools/clients/test-ca.ts "$TLS_DIR" 127.0.0.1 "$DOCKER_TLS_NAME"
else
  printf 'FAIL  docker: no Docker daemon (tools/clients/dockerd.sh start failed)\nclients: 0 passed, 1 failed\n'; rc=1
fi

start_registry() { # data-dir port scheme, then extra environment assignments; sets PID
  local data="$1" port="$2" scheme="$3"; shift 3
  env LADING_DATA_DIR="$data/data" LADING_HTTP_ADDR="127.0.0.1:$port" LADING_LOG_ACCESS=false "$@" \
    "${START[@]}" >>"$data/registry.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 240); do
    curl -sS -o /dev/null ${TLS_DIR:+--cacert "$TLS_DIR/ca.crt"} "$scheme://127.0.0.1:$port/v2/" 2>/dev/null && return 0
    kill -0 "$PID" 2>/dev/null || { echo "the registry exited during start-up:"; cat "$data/registry.log"; return 1; }
    sleep 0.5
  done
  echo "the registry did not answer on $scheme://127.0.0.1:$port within 120 s"; return 1
}
stop_registry() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }

run_registry() { # label, then extra environment assignments
  local label="$1"; shift
  local data port
  data="$(mktemp -d)"
  port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
  if start_registry "$data" "$port" http "$@"; then
    echo "embedded registry ($label) up on 127.0.0.1:$port"
    CONFORMANCE_AUTOMATIC_CROSSMOUNT="$CROSSMOUNT" CONFORMANCE_LABEL="$label" bash tools/conformance/run.sh "http://127.0.0.1:$port" || rc=1
    bash tools/clients/roundtrip.sh "127.0.0.1:$port" || rc=1
    [ -z "$DOCKERD_DIR" ] || bash tools/clients/docker.sh "127.0.0.1:$port" || rc=1
  else
    rc=1
  fi
  stop_registry
  # The same data served over TLS only, the test CA's certificate: the Docker client verifies it (docker.sh).
  if [ -n "$DOCKERD_DIR" ]; then
    if start_registry "$data" "$port" https "$@" LADING_HTTP_TLS_CERTIFICATE="$TLS_DIR/tls.crt" LADING_HTTP_TLS_KEY="$TLS_DIR/tls.key"; then
      echo "embedded registry ($label) up on https://127.0.0.1:$port"
      DOCKER_TLS_DIR="$TLS_DIR" bash tools/clients/docker.sh "127.0.0.1:$port" || rc=1
    else
      rc=1
    fi
    stop_registry
  fi
  if grep -q '"level":50' "$data/registry.log"; then
    echo "the registry ($label) logged errors:"; grep '"level":50' "$data/registry.log" | head -20; rc=1
  fi
  rm -rf "$data"
}

# Auth off (the default): a mount without `from` finds the blob in any repository (201).
CROSSMOUNT=1 run_registry embedded
# Auth on: a mount without `from` cannot prove the caller may read the source, so it opens a session (202).
CROSSMOUNT=0 OCI_USERNAME="$ADMIN_USER" OCI_PASSWORD="$ADMIN_PASSWORD" REGISTRY_USERNAME="$ADMIN_USER" REGISTRY_PASSWORD="$ADMIN_PASSWORD" \
  run_registry embedded-auth LADING_AUTH_ENABLED=true LADING_ADMIN_USER="$ADMIN_USER" LADING_ADMIN_PASSWORD="$ADMIN_PASSWORD"
exit "$rc"
