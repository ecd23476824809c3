#!/usr/bin/env bash
# The Docker client pulling through Lading's pull-through cache, from a real upstream: the image is made here
# (`docker import` of a tar of random files), pushed straight into the upstream as library/<name>, removed locally,
# then pulled twice through Lading:
#   1. `docker pull <name>:<tag>`, a Docker Hub name: the daemon was started with --registry-mirror=<lading>, so it
#      asks Lading for /v2/library/<name>/..., which `mirror.namespace` answers from the proxy namespace (Docker Hub
#      itself is unreachable here, so only the mirror can make this pass);
#   2. `docker pull <lading>/<namespace>/library/<name>:<tag>`, through the proxy namespace by its own name.
# Both must give the image that was built (its id, the config's digest, and its layer diff ids).
#
#   eval "$(DOCKERD_REGISTRY_MIRROR=http://127.0.0.1:<lading-port> tools/clients/dockerd.sh start)"
#   tools/clients/docker-mirror.sh 127.0.0.1:<lading-port> 127.0.0.1:<upstream-port> hub
#   tools/clients/dockerd.sh stop "$DOCKERD_DIR"
#
# Lading must run with `proxies: [{namespace: <namespace>, upstream: http://<upstream>}]` and
# `mirror: {namespace: <namespace>}`. Prints one line per check and finally "clients: N passed, N failed".
set -uo pipefail

if [ "$#" -ne 3 ]; then echo "usage: $0 <lading-host:port> <upstream-host:port> <proxy-namespace>" >&2; exit 2; fi
LADING="$1" UPSTREAM="$2" NS="$3"
[ -n "${DOCKER_HOST:-}" ] || { echo "docker-mirror.sh: DOCKER_HOST is not set; start a daemon with tools/clients/dockerd.sh start" >&2; exit 2; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DOCKER="$(bash "$HERE/dockerd.sh" cli)"
RUN="$(date +%s)-$$"
NAME="lading-mirror-$RUN"   # a Docker Hub official-image name: docker.io/library/$NAME
T="$(mktemp -d "${TMPDIR:-/tmp}/lading-docker-mirror.XXXXXX")"
IMAGES=()
cleanup() {
  [ "${#IMAGES[@]}" -eq 0 ] || "$DOCKER" rmi -f "${IMAGES[@]}" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/docker"
echo '{"auths":{}}' >"$T/docker/config.json"
export DOCKER_CONFIG="$T/docker"
# shellcheck source=tools/clients/checks.sh
. "$HERE/checks.sh"
D=(timeout 120 "$DOCKER")

mirrors="$("$DOCKER" info -f '{{json .RegistryConfig.Mirrors}}' 2>/dev/null)"
expect "docker-mirror: the daemon's registry-mirrors is Lading" "$(printf '%s' "$mirrors" | grep -c "$LADING")" 1 || finish

BUILT="$UPSTREAM/library/$NAME:v1" HUB="$NAME:v1" PROXIED="$LADING/$NS/library/$NAME:v1"
IMAGES=("$BUILT" "$HUB" "$PROXIED")
mkdir -p "$T/rootfs/etc"
head -c 300007 /dev/urandom >"$T/rootfs/etc/base.bin"
check "docker-mirror: import a tar as library/$NAME (the upstream's image)" sh -c 'tar -C "$1" -cf "$2" . && shift 2 && exec "$@"' _ \
  "$T/rootfs" "$T/rootfs.tar" "${D[@]}" import "$T/rootfs.tar" "$BUILT" || finish
BUILT_ID="$("$DOCKER" image inspect -f '{{.Id}}' "$BUILT")"
BUILT_LAYERS="$("$DOCKER" image inspect -f '{{json .RootFS.Layers}}' "$BUILT")"
check "docker-mirror: push it straight into the upstream ($BUILT)" "${D[@]}" push "$BUILT" || finish
check "docker-mirror: rmi; the image is gone locally" sh -c '"$@" && ! "$1" image inspect "$0" >/dev/null 2>&1' \
  "$BUILT_ID" "$DOCKER" rmi "$BUILT" || finish

check "docker-mirror: docker pull $HUB (docker.io/library/$NAME, through --registry-mirror)" "${D[@]}" pull "$HUB"
expect "docker-mirror: pulled through the mirror, the image id is the built one" "$("$DOCKER" image inspect -f '{{.Id}}' "$HUB" 2>/dev/null)" "$BUILT_ID"
expect "docker-mirror: and so are its layer diff ids" "$("$DOCKER" image inspect -f '{{json .RootFS.Layers}}' "$HUB" 2>/dev/null)" "$BUILT_LAYERS"
check "docker-mirror: rmi the mirrored image" sh -c '"$@" && ! "$1" image inspect "$0" >/dev/null 2>&1' "$BUILT_ID" "$DOCKER" rmi "$HUB"

check "docker-mirror: docker pull $PROXIED (the proxy namespace by name)" "${D[@]}" pull "$PROXIED"
expect "docker-mirror: pulled through the namespace, the image id is the built one" "$("$DOCKER" image inspect -f '{{.Id}}' "$PROXIED" 2>/dev/null)" "$BUILT_ID"
expect "docker-mirror: and so are its layer diff ids" "$("$DOCKER" image inspect -f '{{json .RootFS.Layers}}' "$PROXIED" 2>/dev/null)" "$BUILT_LAYERS"

finish
