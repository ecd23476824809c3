#!/usr/bin/env bash
# skopeo, crane, the Docker client and containerd pulling through Lading's pull-through cache from a real upstream,
# in three phases that share a state directory (the caller stops the upstream between `pull` and `cached`):
#
#   seed    builds three multi-arch indexes (mkoci.py) and two one-layer images of PULL_THROUGH_BIG_BYTES (default
#           209715200, 200 MiB); pushes them into the upstream as library/multi:v1 (skopeo copy --all),
#           library/cr:v1 and library/ctr:v1 (crane push), library/big:v1 and library/big-crane:v1 (skopeo copy),
#           and checks that the upstream holds exactly the digests built;
#   pull    through <lading>/<namespace>/library/..., cold: skopeo inspect and copy --all of multi (every platform,
#           every blob), crane manifest, digest and pull (tarball, each platform) of cr and pull of big-crane, docker
#           pull of big, ctr pull (all platforms) of docker.io/library/ctr through a hosts.toml naming Lading as
#           docker.io's mirror; then
#           warm, after removing the local copies: docker pull of big, ctr pull of <lading>/<namespace>/library/ctr;
#   cached  the same with the upstream stopped (checked first: it must not answer), plus a HEAD and a GET of big's
#           layer on Lading. Only what Lading stored can pass.
#
#   UPSTREAM_USERNAME=... UPSTREAM_PASSWORD=... DOCKER_HOST=unix://... CONTAINERD_ADDRESS=/... \
#     tools/clients/pull-through.sh seed|pull|cached <state-dir> <lading-host:port> <upstream-host:port> <namespace>
#
# The upstream's credentials (when it has auth on) are used only to seed it and to read it back in `seed`; every pull
# through Lading is anonymous. Lading must run with `proxies: [{namespace, upstream: http://<upstream>, username,
# password}]` and `mirror: {namespace}`. DOCKER_HOST names a daemon of tools/clients/dockerd.sh, CONTAINERD_ADDRESS
# the socket of one of tools/clients/containerd.sh (`pull` and `cached`). Prints one line per check and finally
# "clients: N passed, N failed".
set -uo pipefail

if [ "$#" -ne 5 ]; then echo "usage: $0 seed|pull|cached <state-dir> <lading-host:port> <upstream-host:port> <namespace>" >&2; exit 2; fi
PHASE="$1" S="$2" LADING="$3" UPSTREAM="$4" NS="$5"
case "$PHASE" in seed|pull|cached) ;; *) echo "pull-through.sh: unknown phase '$PHASE'" >&2; exit 2 ;; esac
[ -d "$S" ] || { echo "pull-through.sh: no state directory $S" >&2; exit 2; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLIENTS_BIN="${CLIENTS_BIN:-$HERE/.cache/bin}"
export CLIENTS_BIN
"$HERE/install.sh" -q || exit 2
export PATH="$CLIENTS_BIN:$PATH"
BIG_BYTES="${PULL_THROUGH_BIG_BYTES:-209715200}"

T="$S/$PHASE"
rm -rf "$T"
mkdir -p "$T/docker"
# Clients see no credentials but the upstream's, and those only where a command names them.
echo '{"auths":{}}' >"$T/docker/config.json"
export DOCKER_CONFIG="$T/docker" REGISTRY_AUTH_FILE="$T/docker/config.json"
UPAUTH="$S/upstream-auth/config.json"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$T/policy.json"
# shellcheck source=tools/clients/checks.sh
. "$HERE/checks.sh"
SK=(timeout 120 skopeo --policy "$T/policy.json")
CR=(timeout 120 crane --insecure)
P="$LADING/$NS/library"   # the cache's names; the upstream's are $UPSTREAM/library/...

# every blob of layout $1 is in layout $2, byte for byte, named by its sha256
same_blobs() {
  local n=0 f h
  for f in "$1"/blobs/sha256/*; do
    h="$(basename "$f")"
    cmp -s "$f" "$2/blobs/sha256/$h" || { echo "blob $h differs or is missing"; return 1; }
    [ "$(sha256sum "$2/blobs/sha256/$h" | cut -d' ' -f1)" = "$h" ] || { echo "blob $h has another sha256"; return 1; }
    n=$((n + 1))
  done
  echo "$n blobs identical"
}
# the digests of what a `crane pull` tarball holds, hashed from its bytes: "<config> <layer>..." in manifest order
tarball_digests() {
  python3 - "$1" <<'EOF'
import hashlib, json, sys, tarfile
def sha256(f):
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
    return "sha256:" + h.hexdigest()
with tarfile.open(sys.argv[1]) as tf:
    (m,) = json.load(tf.extractfile("manifest.json"))
    print(*(sha256(tf.extractfile(name)) for name in [m["Config"], *m["Layers"]]))
EOF
}
# the digest a layout's index.json names as <ref>
layout_ref() { json "$1/index.json" '[m["digest"] for m in d["manifests"] if m.get("annotations",{}).get("org.opencontainers.image.ref.name")=="'"$2"'"][0]'; }

seed() {
  mkdir -p "$S/upstream-auth"
  if [ -n "${UPSTREAM_USERNAME:-}" ]; then
    printf '{"auths":{"%s":{"auth":"%s"}}}' "$UPSTREAM" "$(printf '%s:%s' "$UPSTREAM_USERNAME" "${UPSTREAM_PASSWORD:-}" | base64 -w0)" >"$UPAUTH"
  else
    echo '{"auths":{}}' >"$UPAUTH"
  fi
  check "seed: build a multi-arch index (linux/amd64, linux/arm64) for skopeo" \
    sh -c 'python3 "$1" "$2" v1 >"$3"' _ "$HERE/mkoci.py" "$S/multi" "$S/multi.json" || finish
  MULTI="$(json "$S/multi.json" 'd["index"]')"
  check "seed: skopeo copy --all it into the upstream as library/multi:v1" \
    "${SK[@]}" copy --all --preserve-digests --retry-times 0 --dest-tls-verify=false --dest-authfile "$UPAUTH" \
      "oci:$S/multi:v1" "docker://$UPSTREAM/library/multi:v1"
  check "seed: build another multi-arch index for crane" \
    sh -c 'python3 "$1" "$2" v1 >"$3"' _ "$HERE/mkoci.py" "$S/cr" "$S/cr.json" || finish
  CRI="$(json "$S/cr.json" 'd["index"]')"
  check "seed: crane push it into the upstream as library/cr:v1" \
    env DOCKER_CONFIG="$S/upstream-auth" "${CR[@]}" push "$S/cr" "$UPSTREAM/library/cr:v1"
  check "seed: build a third multi-arch index for containerd" \
    sh -c 'python3 "$1" "$2" v1 >"$3"' _ "$HERE/mkoci.py" "$S/ctr" "$S/ctr.json" || finish
  CTRI="$(json "$S/ctr.json" 'd["index"]')"
  check "seed: crane push it into the upstream as library/ctr:v1" \
    env DOCKER_CONFIG="$S/upstream-auth" "${CR[@]}" push "$S/ctr" "$UPSTREAM/library/ctr:v1"
  for big in big big-crane; do
    check "seed: build an image of one $BIG_BYTES-byte layer (linux/$ARCH)" \
      sh -c 'python3 "$1" "$2" v1 --big "$3" --arch "$4" >"$5"' _ "$HERE/mkoci.py" "$S/$big" "$BIG_BYTES" "$ARCH" "$S/$big.json" || finish
    check "seed: skopeo copy it into the upstream as library/$big:v1" \
      "${SK[@]}" copy --preserve-digests --retry-times 0 --dest-tls-verify=false --dest-authfile "$UPAUTH" \
        "oci:$S/$big:v1" "docker://$UPSTREAM/library/$big:v1"
    check "seed: the upstream's $big:v1 is the built image" env DOCKER_CONFIG="$S/upstream-auth" "${CR[@]}" digest "$UPSTREAM/library/$big:v1" \
      && expect "seed: its digest" "$OUT" "$(json "$S/$big.json" 'd["manifest"]')"
  done
  # The upstream holds what was built: from here on "the upstream's digest" and "the built digest" are one.
  check "seed: the upstream's multi:v1 is the built index" "${SK[@]}" inspect --raw --tls-verify=false --authfile "$UPAUTH" "docker://$UPSTREAM/library/multi:v1" \
    && { printf '%s' "$OUT" >"$T/multi.raw"; expect "seed: its digest" "$(sha "$T/multi.raw")" "$MULTI"; }
  check "seed: the upstream's cr:v1 is the built index" env DOCKER_CONFIG="$S/upstream-auth" "${CR[@]}" digest "$UPSTREAM/library/cr:v1" \
    && expect "seed: its digest" "$OUT" "$CRI"
  check "seed: the upstream's ctr:v1 is the built index" env DOCKER_CONFIG="$S/upstream-auth" "${CR[@]}" digest "$UPSTREAM/library/ctr:v1" \
    && expect "seed: its digest" "$OUT" "$CTRI"
  if [ -n "${UPSTREAM_USERNAME:-}" ]; then
    expect "seed: the upstream refuses an anonymous pull (so Lading's pulls below use its credentials)" \
      "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$UPSTREAM/v2/library/multi/manifests/v1")" 401
  fi
  finish
}

skopeo_checks() { # label
  check "skopeo ($1): inspect --raw $P/multi:v1" "${SK[@]}" inspect --raw --tls-verify=false "docker://$P/multi:v1" \
    && { printf '%s' "$OUT" >"$T/multi.raw"; expect "skopeo ($1): the index's digest is the upstream's" "$(sha "$T/multi.raw")" "$MULTI"; }
  for arch in amd64 arm64; do
    expect "skopeo ($1): the index names the upstream's linux/$arch manifest" \
      "$(json "$T/multi.raw" '[m["digest"] for m in d["manifests"] if m["platform"]["architecture"]=="'"$arch"'"][0]')" \
      "$(json "$S/multi.json" 'd["manifests"]["'"$arch"'"]')"
    check "skopeo ($1): inspect linux/$arch" "${SK[@]}" --override-os linux --override-arch "$arch" inspect --tls-verify=false "docker://$P/multi:v1" \
      && expect "skopeo ($1): linux/$arch's layers are the upstream's" \
        "$(printf '%s' "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["Architecture"], *d["Layers"])')" \
        "$(json "$S/multi.json" '" ".join(["'"$arch"'", *d["layers"]["'"$arch"'"]])')"
  done
  check "skopeo ($1): copy --all docker://$P/multi:v1 -> oci:" \
    "${SK[@]}" copy --all --preserve-digests --retry-times 0 --src-tls-verify=false "docker://$P/multi:v1" "oci:$T/skopeo:v1" \
    && expect "skopeo ($1): the copy's index is the upstream's" "$(layout_ref "$T/skopeo" v1)" "$MULTI" \
    && check "skopeo ($1): every blob (index, 2 manifests, 2 configs, 3 layers) is the upstream's, byte for byte" same_blobs "$S/multi" "$T/skopeo"
}

crane_checks() { # label
  check "crane ($1): manifest $P/cr:v1" sh -c '"$@" >"$0"' "$T/cr.raw" "${CR[@]}" manifest "$P/cr:v1" \
    && expect "crane ($1): the index's bytes hash to the upstream's digest" "$(sha "$T/cr.raw")" "$CRI"
  check "crane ($1): digest $P/cr:v1" "${CR[@]}" digest "$P/cr:v1" && expect "crane ($1): it is the upstream's" "$OUT" "$CRI"
  for arch in amd64 arm64; do
    check "crane ($1): digest --platform linux/$arch" "${CR[@]}" digest --platform "linux/$arch" "$P/cr:v1" \
      && expect "crane ($1): it is the upstream's linux/$arch manifest" "$OUT" "$(json "$S/cr.json" 'd["manifests"]["'"$arch"'"]')"
    check "crane ($1): pull --platform linux/$arch (tarball)" "${CR[@]}" pull --platform "linux/$arch" "$P/cr:v1" "$T/cr-$arch.tar" \
      && expect "crane ($1): the tarball's config and layers hash to the upstream's linux/$arch digests" "$(tarball_digests "$T/cr-$arch.tar")" \
        "$(json "$S/cr.json" '" ".join([d["configs"]["'"$arch"'"], *d["layers"]["'"$arch"'"]])')"
  done
  check "crane ($1): pull $P/big-crane:v1 (tarball, a $BIG_BYTES-byte layer)" "${CR[@]}" pull "$P/big-crane:v1" "$T/big-crane.tar" \
    && expect "crane ($1): the tarball's config and layer hash to the upstream's digests" "$(tarball_digests "$T/big-crane.tar")" \
      "$(json "$S/big-crane.json" '" ".join([d["config"], d["layer"]])')"
  rm -f "$T/big-crane.tar"
}

docker_checks() { # label
  local image="$P/big:v1"
  check "docker ($1): pull $image" "${D[@]}" pull "$image"
  expect "docker ($1): the image id is the upstream's config digest" "$("$DOCKER" image inspect -f '{{.Id}}' "$image" 2>/dev/null)" "$(json "$S/big.json" 'd["config"]')"
  expect "docker ($1): its layer's diff id is the upstream's" "$("$DOCKER" image inspect -f '{{json .RootFS.Layers}}' "$image" 2>/dev/null)" "[\"$(json "$S/big.json" 'd["diff_id"]')\"]"
  expect "docker ($1): its repo digest is the upstream's manifest" "$("$DOCKER" image inspect -f '{{join .RepoDigests " "}}' "$image" 2>/dev/null)" "$P/big@$(json "$S/big.json" 'd["manifest"]')"
}

docker_rmi() { # label
  check "docker ($1): rmi $P/big:v1; the image is gone locally" \
    sh -c '"$@" && ! "$1" image inspect "$0" >/dev/null 2>&1' "$P/big:v1" "$DOCKER" rmi "$P/big:v1"
}

# ctr: the image <ref> is the upstream's index, and the content store holds every blob of it
ctr_holds() { # label ref
  expect "ctr ($1): $2 is the upstream's index" "$("${CTR[@]}" images ls | awk -v ref="$2" '$1 == ref {print $3}')" "$CTRI"
  check "ctr ($1): the content store holds every blob of it (index, 2 manifests, 2 configs, 3 layers)" sh -c \
    'have="$("$@" content ls -q)" && for f in "$0"/blobs/sha256/*; do printf "%s\n" "$have" | grep -qx "sha256:${f##*/}" || { echo "missing sha256:${f##*/}"; exit 1; }; done' \
    "$S/ctr" "${CTR[@]}"
}

# ctr: pull docker.io/library/ctr:v1 with a hosts.toml whose only reachable host is Lading, as docker.io's mirror
ctr_mirror_pull() { # label
  mkdir -p "$T/hosts/docker.io"
  printf 'server = "https://registry-1.docker.io"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$LADING" >"$T/hosts/docker.io/hosts.toml"
  check "ctr ($1): pull --all-platforms docker.io/library/ctr:v1, Lading as docker.io's mirror (hosts.toml)" \
    "${CTR[@]}" images pull --hosts-dir "$T/hosts" --snapshotter native --all-platforms docker.io/library/ctr:v1
  ctr_holds "$1" docker.io/library/ctr:v1
}

# ctr: pull <lading>/<namespace>/library/ctr:v1 by name
ctr_name_pull() { # label
  check "ctr ($1): pull --all-platforms --plain-http $P/ctr:v1" \
    "${CTR[@]}" images pull --plain-http --snapshotter native --all-platforms "$P/ctr:v1"
  ctr_holds "$1" "$P/ctr:v1"
}

# ctr: remove every image, and with them their content
ctr_rmi() { # label
  check "ctr ($1): images rm --sync; the index is gone from the content store" sh -c \
    'refs="$("$@" images ls -q)" || exit 1; [ -z "$refs" ] || "$@" images rm --sync $refs >/dev/null || exit 1
      have="$("$@" content ls -q)" || exit 1; ! printf "%s\n" "$have" | grep -qx "$0"' \
    "$CTRI" "${CTR[@]}"
}

pull() {
  skopeo_checks cold
  crane_checks cold
  docker_checks cold
  ctr_mirror_pull cold
  docker_rmi warm
  docker_checks warm
  ctr_rmi warm
  ctr_name_pull warm
  finish
}

cached() {
  check "cached: the upstream is stopped (http://$UPSTREAM/v2/ does not answer)" sh -c '! curl -s -o /dev/null --max-time 5 "http://$0/v2/"' "$UPSTREAM" || finish
  skopeo_checks "upstream stopped"
  crane_checks "upstream stopped"
  local layer size
  layer="$(json "$S/big.json" 'd["layer"]')" size="$(json "$S/big.json" 'd["size"]')"
  check "lading (upstream stopped): HEAD of big's layer" curl -sfI --max-time 30 "http://$LADING/v2/$NS/library/big/blobs/$layer" \
    && expect "lading (upstream stopped): its Content-Length is the layer's size" "$(printf '%s' "$OUT" | tr -d '\r' | awk 'tolower($1)=="content-length:"{print $2}')" "$size"
  check "crane (upstream stopped): blob $P/big@<layer> hashes to the layer's digest" \
    sh -c '[ "sha256:$("$@" | sha256sum | cut -d" " -f1)" = "$0" ]' "$layer" "${CR[@]}" blob "$P/big@$layer"
  docker_rmi "upstream stopped"
  docker_checks "upstream stopped"
  docker_rmi "upstream stopped"
  ctr_rmi "upstream stopped"
  ctr_mirror_pull "upstream stopped"
  ctr_rmi "upstream stopped"
  ctr_name_pull "upstream stopped"
  finish
}

case "$(uname -m)" in x86_64) ARCH=amd64 ;; aarch64) ARCH=arm64 ;; *) ARCH="$(uname -m)" ;; esac
if [ "$PHASE" != seed ]; then
  [ -n "${DOCKER_HOST:-}" ] || { echo "pull-through.sh: DOCKER_HOST is not set; start a daemon with tools/clients/dockerd.sh start" >&2; exit 2; }
  DOCKER="$(bash "$HERE/dockerd.sh" cli)"
  D=(timeout 300 "$DOCKER")
  [ -n "${CONTAINERD_ADDRESS:-}" ] || { echo "pull-through.sh: CONTAINERD_ADDRESS is not set; start a daemon with tools/clients/containerd.sh start" >&2; exit 2; }
  CTR=(timeout 120 ctr --address "$CONTAINERD_ADDRESS" --namespace lading)
fi
[ "$PHASE" = seed ] || [ -s "$S/big.json" ] || { echo "pull-through.sh: run the seed phase first" >&2; exit 2; }
MULTI="$(json "$S/multi.json" 'd["index"]')" CRI="$(json "$S/cr.json" 'd["index"]')" CTRI="$(json "$S/ctr.json" 'd["index"]')"
"$PHASE"
