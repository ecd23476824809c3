#!/usr/bin/env bash
# The Docker client's round trip through a registry: docker login, push, pull (after rmi, so it downloads),
# image inspect (no docker run) and logout, with Debian's docker.io client and daemon.
#
#   eval "$(tools/clients/dockerd.sh start)"      # a private daemon: DOCKER_HOST, DOCKERD_DIR, DOCKER_TLS_NAME
#   tools/clients/docker.sh 127.0.0.1:<port>
#   tools/clients/dockerd.sh stop "$DOCKERD_DIR"
#
# The images are made here, as there is no Docker Hub: `docker import` of a tar of random files (layer 1), then
# `docker build` (classic builder) of FROM that + COPY (layer 2). After the pull, the image's RepoDigests must hold
# the digest the push reported, its id (the config's digest) and layer diff ids must be the ones built, and the
# files (copied out of a created, never started, container) byte-identical.
# Optional environment:
#   REGISTRY_USERNAME / REGISTRY_PASSWORD  the registry has token auth on: an anonymous push and a login with a wrong
#       password must be refused, then login, push, pull, logout, and a pull after the logout must be refused
#   DOCKER_TLS_DIR  the registry serves TLS with a certificate for DOCKER_TLS_NAME signed by $DOCKER_TLS_DIR/ca.crt
#       (tools/clients/test-ca.ts). dockerd would skip verifying anything in 127.0.0.0/8, so the daemon reaches the
#       registry as DOCKER_TLS_NAME:<port>, a name that resolves to ::1 in its namespace only (dockerd.sh), through
#       loopback-relay.ts; first with $DOCKER_TLS_DIR/other-ca.crt as the CA in /etc/docker/certs.d/<name>:<port>,
#       which must fail certificate verification, then with ca.crt. The CA is removed at the end.
#   ROUNDTRIP_NAMESPACE   repository prefix (default "roundtrip")
# Prints one line per check and finally "clients: N passed, N failed".
set -uo pipefail

ADDR="${1:-}"
if [ -z "$ADDR" ] || [ "$#" -ne 1 ]; then
  echo "usage: $0 <registry-host:port>" >&2
  exit 2
fi
ADDR="${ADDR#http://}"; ADDR="${ADDR#https://}"; ADDR="${ADDR%/}"
PORT="${ADDR##*:}"
[ -n "${DOCKER_HOST:-}" ] || { echo "docker.sh: DOCKER_HOST is not set; start a daemon with tools/clients/dockerd.sh start" >&2; exit 2; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DOCKER="$(bash "$HERE/dockerd.sh" cli)"
NS="${ROUNDTRIP_NAMESPACE:-roundtrip}"
RUN="$(date +%s)-$$"
TLS_DIR="${DOCKER_TLS_DIR:-}"
AUTH=off; [ -n "${REGISTRY_USERNAME:-}" ] && AUTH=on

T="$(mktemp -d "${TMPDIR:-/tmp}/lading-docker.XXXXXX")"
RELAY_PID="" CERTS_DIR="" IMAGES=()
cleanup() {
  [ "${#IMAGES[@]}" -eq 0 ] || "$DOCKER" rmi -f "${IMAGES[@]}" >/dev/null 2>&1 || true
  [ -z "$CERTS_DIR" ] || rm -rf "$CERTS_DIR"
  if [ -n "$RELAY_PID" ]; then kill "$RELAY_PID" 2>/dev/null; wait "$RELAY_PID" 2>/dev/null; tail -n 1 "$T/relay.log"; fi
  rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/docker"
echo '{"auths":{}}' >"$T/docker/config.json"
export DOCKER_CONFIG="$T/docker"   # not the user's credentials
# shellcheck source=tools/clients/checks.sh
. "$HERE/checks.sh"
# Every docker command gets a deadline: the daemon retries some failures for minutes.
D=(timeout 120 "$DOCKER")

# refused <regex> <command...>: succeeds iff the command fails with output matching the regex.
refused() {
  local re="$1"; shift
  if "$@" >"$T/refused.out" 2>&1; then echo "accepted: $(tail -n 2 "$T/refused.out")"; return 1; fi
  grep -Eiq "$re" "$T/refused.out" || { cat "$T/refused.out"; return 1; }
  grep -Ei "$re" "$T/refused.out" | tail -n 1
}
count() { printf '%s\n' "$2" | grep -c -- "$1"; }

if [ -n "$TLS_DIR" ]; then
  [ -n "${DOCKER_TLS_NAME:-}" ] || { echo "docker.sh: DOCKER_TLS_DIR needs DOCKER_TLS_NAME (from dockerd.sh start)" >&2; exit 2; }
  REG="$DOCKER_TLS_NAME:$PORT"; SCHEME=https
else
  REG="$ADDR"; SCHEME=http
fi
echo "docker: registry $SCHEME://$REG, auth $AUTH (client $("$DOCKER" version -f '{{.Client.Version}}' 2>/dev/null), daemon $("$DOCKER" version -f '{{.Server.Version}}' 2>/dev/null || echo unreachable) on $DOCKER_HOST)"
check "docker: the daemon answers" "${D[@]}" version || finish

# ------------------------------------------------------------------------- TLS
if [ -n "$TLS_DIR" ]; then
  expect "docker: tls: the registry's port answers no plain HTTP (so no fallback to it can pass)" \
    "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$ADDR/v2/" || true)" "000"
  (cd "$HERE/../.." && exec node --import tsx tools/clients/loopback-relay.ts "$PORT") >"$T/relay.log" 2>&1 &
  RELAY_PID=$!
  relay_up() { # the registry answers through the relay, its certificate verified against the test CA
    local code
    for _ in $(seq 1 120); do
      code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$TLS_DIR/ca.crt" --resolve "$REG:[::1]" "https://$REG/v2/" || true)"
      case "$code" in 200|401) echo "GET https://$REG/v2/ via [::1] -> $code"; return 0 ;; esac
      kill -0 "$RELAY_PID" 2>/dev/null || { cat "$T/relay.log"; return 1; }
      sleep 0.25
    done
    echo "GET https://$REG/v2/ via [::1] -> ${code:-no answer}"; return 1
  }
  check "docker: tls: relay [::1]:$PORT -> 127.0.0.1:$PORT up, registry answers over TLS (curl, test CA)" relay_up || finish
  CERTS_DIR="/etc/docker/certs.d/$REG"
  mkdir -p "$CERTS_DIR"
  cp "$TLS_DIR/other-ca.crt" "$CERTS_DIR/ca.crt"
  check "docker: tls: with another CA in certs.d the daemon refuses the certificate (x509)" \
    refused 'x509' "${D[@]}" pull "$REG/$NS/docker-absent:v1"
  cp "$TLS_DIR/ca.crt" "$CERTS_DIR/ca.crt"
else
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$REG/v2/" || true)"
  case "$code" in
    200|401) pass "docker: registry reachable (GET /v2/ -> $code)" ;;
    *) fail "docker: registry reachable" "GET http://$REG/v2/ returned '${code:-no response}'"; finish ;;
  esac
fi

# ---------------------------------------------------------------- the images
BASE="lading-docker-test/base:$RUN" APP="lading-docker-test/app:$RUN"
REPO="$REG/$NS/docker-$RUN"
IMAGES=("$BASE" "$APP" "$REPO:v1" "$REPO:v2")
mkdir -p "$T/rootfs/etc" "$T/ctx"
head -c 300007 /dev/urandom >"$T/rootfs/etc/base.bin"
echo "$RUN" >"$T/rootfs/etc/run"
head -c 200003 /dev/urandom >"$T/ctx/top.bin"
printf 'FROM %s\nCOPY top.bin /top.bin\n' "$BASE" >"$T/ctx/Dockerfile"
check "docker: import a tar as the base image (layer 1)" sh -c 'tar -C "$1" -cf "$2" . && shift 2 && exec "$@"' _ \
  "$T/rootfs" "$T/rootfs.tar" "${D[@]}" import -c 'ENV LADING_TEST=1' "$T/rootfs.tar" "$BASE" || finish
check "docker: build FROM base + COPY (layer 2, classic builder)" \
  env DOCKER_BUILDKIT=0 "${D[@]}" build -q -t "$APP" "$T/ctx" || finish
"$DOCKER" image inspect "$APP" >"$T/built.json" 2>/dev/null
BUILT_ID="$(json "$T/built.json" 'd[0]["Id"]')"
BUILT_LAYERS="$(json "$T/built.json" 'd[0]["RootFS"]["Layers"]')"
expect "docker: the built image has 2 layers" "$(json "$T/built.json" 'len(d[0]["RootFS"]["Layers"])')" 2
"$DOCKER" tag "$APP" "$REPO:v1" && "$DOCKER" tag "$APP" "$REPO:v2"

# ------------------------------------------------------------------------ login
if [ "$AUTH" = on ]; then
  check "docker: anonymous push refused" refused 'denied|unauthorized|authentication required' "${D[@]}" push "$REPO:v1"
  check "docker: login with a wrong password refused" refused 'unauthorized|invalid username or password' \
    sh -c 'p="$1"; shift; printf %s "wrong-$p" | "$@"' _ "$REGISTRY_PASSWORD" "${D[@]}" login -u "$REGISTRY_USERNAME" --password-stdin "$REG"
  check "docker: login" sh -c 'p="$1"; shift; printf %s "$p" | "$@"' _ "$REGISTRY_PASSWORD" "${D[@]}" login -u "$REGISTRY_USERNAME" --password-stdin "$REG" || finish
  expect "docker: login stored credentials for $REG" "$(json "$T/docker/config.json" '"'"$REG"'" in d["auths"]')" True
fi

# ------------------------------------------------------------------ push / pull
check "docker: push $REPO:v1" "${D[@]}" push "$REPO:v1" || finish
PUSHED="$(printf '%s\n' "$OUT" | sed -n 's/^v1: digest: \(sha256:[0-9a-f]\{64\}\) size: [0-9]*$/\1/p')"
expect "docker: push pushed 2 layers" "$(count ': Pushed$' "$OUT")" 2
check "docker: push $REPO:v2 (same image)" "${D[@]}" push "$REPO:v2" \
  && expect "docker: second push finds both layers already there" "$(count ': Layer already exists$' "$OUT")" 2
check "docker: rmi every local tag; image and layers gone locally" sh -c \
  '"$@" && ! "$1" image inspect "$0" >/dev/null 2>&1' "$BUILT_ID" "$DOCKER" rmi "$REPO:v1" "$REPO:v2" "$APP" "$BASE"
check "docker: pull $REPO:v1" "${D[@]}" pull "$REPO:v1" \
  && expect "docker: pull downloaded 2 layers" "$(count ': Pull complete$' "$OUT")" 2
check "docker: image inspect" sh -c '"$@" >"$0"' "$T/pulled.json" "${D[@]}" image inspect "$REPO:v1"
expect "docker: RepoDigests == the digest push reported" "$(json "$T/pulled.json" 'd[0]["RepoDigests"]')" "[\"$REPO@$PUSHED\"]"
expect "docker: image id (the config's digest) unchanged" "$(json "$T/pulled.json" 'd[0]["Id"]')" "$BUILT_ID"
expect "docker: layer diff ids unchanged" "$(json "$T/pulled.json" 'd[0]["RootFS"]["Layers"]')" "$BUILT_LAYERS"
files_identical() { # copy the files out of a created (never started) container
  local cid rc=0
  cid="$("${D[@]}" create "$REPO:v1" /none)" || return 1
  mkdir -p "$T/out"
  { "${D[@]}" cp "$cid:/etc/base.bin" "$T/out/base.bin" && "${D[@]}" cp "$cid:/top.bin" "$T/out/top.bin" \
    && cmp "$T/out/base.bin" "$T/rootfs/etc/base.bin" && cmp "$T/out/top.bin" "$T/ctx/top.bin"; } || rc=1
  "$DOCKER" rm "$cid" >/dev/null
  return "$rc"
}
check "docker: files of both layers byte-identical (docker create + cp, no run)" files_identical
IMAGES+=("$REPO@$PUSHED")
check "docker: pull by digest $REPO@$PUSHED" "${D[@]}" pull "$REPO@$PUSHED" \
  && expect "docker: pull by digest resolves to the same image" "$("$DOCKER" image inspect -f '{{.Id}}' "$REPO@$PUSHED" 2>/dev/null)" "$BUILT_ID"

# ----------------------------------------------------------------------- logout
if [ "$AUTH" = on ]; then
  check "docker: logout" "${D[@]}" logout "$REG"
  expect "docker: logout removed the credentials" "$(json "$T/docker/config.json" '"'"$REG"'" in d["auths"]')" False
  check "docker: pull after logout refused" refused 'denied|unauthorized|authentication required' "${D[@]}" pull "$REPO:v1"
fi

finish
