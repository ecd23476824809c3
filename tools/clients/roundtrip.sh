#!/usr/bin/env bash
# Round-trip locally generated images/artifacts through a registry with real
# clients (skopeo, crane, oras) and verify everything byte for byte.
#
#   tools/clients/roundtrip.sh <registry-host:port>
#
# The registry is spoken to over plain HTTP. Optional environment:
#   REGISTRY_USERNAME / REGISTRY_PASSWORD  log in with every client first
#   REFERRERS_API=require|auto   (default require) "auto" turns the checks that
#       need the OCI 1.1 referrers API (GET /v2/<name>/referrers/<digest>) into
#       "skip" lines when the registry lacks it (e.g. CNCF Distribution 2.x);
#       oras then falls back to the referrers tag schema, which is still checked.
#   ROUNDTRIP_BIG_BYTES   size of the random payload of the large layer (default 210000000)
#   ROUNDTRIP_NAMESPACE   repository prefix (default "roundtrip")
#   ROUNDTRIP_KEEP=1      keep the temp dir (printed) for debugging
# Prints one line per check and finally "clients: N passed, N failed".
set -uo pipefail

REG="${1:-}"
if [ -z "$REG" ] || [ "$#" -ne 1 ]; then
  echo "usage: $0 <registry-host:port>" >&2
  exit 2
fi
REG="${REG#http://}"; REG="${REG%/}"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLIENTS_BIN="${CLIENTS_BIN:-$HERE/.cache/bin}"
export CLIENTS_BIN
"$HERE/install.sh" -q || exit 2
export PATH="$CLIENTS_BIN:$PATH"

REFERRERS_API="${REFERRERS_API:-require}"
case "$REFERRERS_API" in require|auto) ;; *) echo "REFERRERS_API must be 'require' or 'auto'" >&2; exit 2 ;; esac
BIG_BYTES="${ROUNDTRIP_BIG_BYTES:-210000000}"
NS="${ROUNDTRIP_NAMESPACE:-roundtrip}"
RUN="$(date +%s)-$$"

T="$(mktemp -d "${TMPDIR:-/tmp}/lading-clients.XXXXXX")"
cleanup() { if [ "${ROUNDTRIP_KEEP:-}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi; }
trap cleanup EXIT
mkdir -p "$T/log" "$T/docker"
echo '{"auths":{}}' >"$T/docker/config.json"
# Isolate every client from the user's own credentials/config.
export DOCKER_CONFIG="$T/docker"
AUTHFILE="$T/docker/config.json"
export REGISTRY_AUTH_FILE="$AUTHFILE"
cat >"$T/policy.json" <<'EOF'
{"default":[{"type":"insecureAcceptAnything"}]}
EOF

# shellcheck source=tools/clients/checks.sh
. "$HERE/checks.sh"
# Succeeds iff the command fails with a 404 / *_UNKNOWN error.
gone() {
  if "$@" >"$T/gone.out" 2>&1; then echo "still present: $(head -c 200 "$T/gone.out")"; return 1; fi
  grep -Eiq '404|not ?found|MANIFEST_UNKNOWN|NAME_UNKNOWN' "$T/gone.out" || { cat "$T/gone.out"; return 1; }
}

echo "registry: http://$REG  (skopeo $(skopeo --version | awk '{print $3}'), crane $(crane version), oras $(oras version | awk '/^Version/{print $2}'))"

# ---------------------------------------------------------------- reachability
code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$REG/v2/" || true)"
case "$code" in
  200|401) pass "registry reachable (GET /v2/ -> $code)" ;;
  *) fail "registry reachable" "GET http://$REG/v2/ returned '${code:-no response}'"; finish ;;
esac

# ----------------------------------------------------------------------- login
ORAS=(--plain-http --registry-config "$AUTHFILE")
if [ -n "${REGISTRY_USERNAME:-}" ]; then
  check "skopeo login" sh -c 'printf %s "$REGISTRY_PASSWORD" | skopeo login --tls-verify=false --authfile "$1" -u "$REGISTRY_USERNAME" --password-stdin "$2"' _ "$AUTHFILE" "$REG"
  check "oras login" sh -c 'printf %s "$REGISTRY_PASSWORD" | oras login --plain-http --registry-config "$1" -u "$REGISTRY_USERNAME" --password-stdin "$2"' _ "$AUTHFILE" "$REG"
  check "crane auth login" sh -c 'printf %s "$REGISTRY_PASSWORD" | crane auth login -u "$REGISTRY_USERNAME" --password-stdin "$1"' _ "$REG"
  [ "$FAILED" -eq 0 ] || finish
fi

# ====================================================================== skopeo
S_REPO="$REG/$NS/skopeo-$RUN"
SK=(skopeo --policy "$T/policy.json")
if check "skopeo: generate multi-arch OCI layout (index + linux/amd64 + linux/arm64)" \
     sh -c 'python3 "$1" "$2" v1 >"$3"' _ "$HERE/mkoci.py" "$T/oci-src" "$T/oci-src.json"; then
  IDX="$(json "$T/oci-src.json" 'd["index"]')"
  ARM="$(json "$T/oci-src.json" 'd["manifests"]["arm64"]')"

  check "skopeo: copy --all oci: -> docker://$S_REPO:v1" \
    "${SK[@]}" copy --all --preserve-digests --retry-times 0 --dest-tls-verify=false \
      "oci:$T/oci-src:v1" "docker://$S_REPO:v1"

  check "skopeo: inspect --raw (index)" "${SK[@]}" inspect --raw --tls-verify=false "docker://$S_REPO:v1" \
    && { printf '%s' "$OUT" >"$T/sk-index.raw"; expect "skopeo: registry index digest == local index digest" "$(sha "$T/sk-index.raw")" "$IDX"; }

  for arch in amd64 arm64; do
    check "skopeo: inspect linux/$arch" "${SK[@]}" --override-os linux --override-arch "$arch" \
        inspect --tls-verify=false "docker://$S_REPO:v1" \
      && expect "skopeo: linux/$arch resolves to its own config and layers" \
           "$(printf '%s' "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["Architecture"], *d["Layers"])')" \
           "$arch $(json "$T/oci-src.json" '" ".join(d["layers"]["'"$arch"'"])')"
  done

  check "skopeo: copy --all docker://$S_REPO:v1 -> fresh oci: dir" \
    "${SK[@]}" copy --all --preserve-digests --retry-times 0 --src-tls-verify=false \
      "docker://$S_REPO:v1" "oci:$T/oci-dst:v1"

  expect "skopeo: pulled layout index.json points at the same index digest" \
    "$(json "$T/oci-dst/index.json" '[m["digest"] for m in d["manifests"] if m.get("annotations",{}).get("org.opencontainers.image.ref.name")=="v1"][0]')" "$IDX"

  cmp_blobs() { # every source blob exists in the pulled layout, same bytes, name == sha256
    local n=0 f h
    for f in "$T"/oci-src/blobs/sha256/*; do
      h="$(basename "$f")"
      cmp -s "$f" "$T/oci-dst/blobs/sha256/$h" || { echo "blob $h differs or is missing"; return 1; }
      [ "$(sha256sum "$T/oci-dst/blobs/sha256/$h" | cut -d' ' -f1)" = "$h" ] || { echo "blob $h bad sha256"; return 1; }
      n=$((n + 1))
    done
    echo "$n blobs identical"
  }
  check "skopeo: every blob (index, 2 manifests, 2 configs, 3 layers) byte-identical after round trip" cmp_blobs
fi

# ======================================================================= crane
C_REPO="$REG/$NS/crane-$RUN"
C_REPO2="$REG/$NS/crane-copy-$RUN"
CR=(crane --insecure)
mkbig() { # gzip'd tar (stored deflate blocks: fast, incompressible anyway) of random bytes
  python3 - "$1" "$BIG_BYTES" <<'EOF'
import sys, tarfile
out, size = sys.argv[1], int(sys.argv[2])
with open("/dev/urandom", "rb") as rnd, tarfile.open(out, "w:gz", compresslevel=0) as tf:
    ti = tarfile.TarInfo("big.bin"); ti.size, ti.mode, ti.mtime = size, 0o644, 0
    tf.addfile(ti, rnd)
EOF
}
if check "crane: generate ${BIG_BYTES}-byte random layer" mkbig "$T/big.tar.gz"; then
  BIG_SHA="$(sha "$T/big.tar.gz")"; BIG_SIZE="$(stat -c %s "$T/big.tar.gz")"

  check "crane: append big layer onto empty base, push $C_REPO:big" \
    "${CR[@]}" append -f "$T/big.tar.gz" -t "$C_REPO:big"
  PUSHED="${OUT##*@}"; PUSHED="$(printf '%s' "$PUSHED" | tail -n1)"

  check "crane: manifest" "${CR[@]}" manifest "$C_REPO:big" && printf '%s' "$OUT" >"$T/crane-m.json"
  expect "crane: sha256(manifest bytes) == digest reported by append" "$(sha "$T/crane-m.json")" "$PUSHED"
  expect "crane: manifest layer digest == sha256 of local layer file" "$(json "$T/crane-m.json" 'd["layers"][-1]["digest"]')" "$BIG_SHA"
  expect "crane: manifest layer size == local layer size" "$(json "$T/crane-m.json" 'd["layers"][-1]["size"]')" "$BIG_SIZE"
  check "crane: digest" "${CR[@]}" digest "$C_REPO:big" && expect "crane: digest (Docker-Content-Digest) == pushed digest" "$OUT" "$PUSHED"

  CFG="$(json "$T/crane-m.json" 'd["config"]["digest"]')"
  check "crane: config" sh -c '"$@" >"$0"' "$T/crane-cfg.json" "${CR[@]}" config "$C_REPO:big"
  expect "crane: config blob digest matches manifest" "$(sha "$T/crane-cfg.json")" "$CFG"

  check "crane: blob (stream ${BIG_SIZE} bytes back)" sh -c '"$@" >"$0"' "$T/big.back" "${CR[@]}" blob "$C_REPO@$BIG_SHA"
  check "crane: blob bytes identical to local layer" cmp "$T/big.back" "$T/big.tar.gz"
  rm -f "$T/big.back"

  check "crane: pull --format oci" "${CR[@]}" pull --format oci "$C_REPO:big" "$T/crane-pull"
  check "crane: pulled layout layer + manifest byte-identical" sh -c \
    'cmp "$1/blobs/sha256/${2#sha256:}" "$3" && cmp "$1/blobs/sha256/${4#sha256:}" "$5"' _ \
    "$T/crane-pull" "$BIG_SHA" "$T/big.tar.gz" "$PUSHED" "$T/crane-m.json"
  rm -rf "$T/crane-pull"

  # push of a local multi-arch OCI layout (the one built for skopeo) as an index
  if [ -n "${IDX:-}" ]; then
    check "crane: push multi-arch OCI layout -> $C_REPO:multi" "${CR[@]}" push "$T/oci-src" "$C_REPO:multi" \
      && expect "crane: pushed index digest == local index digest" "$(printf '%s' "$OUT" | tail -n1 | sed 's/.*@//')" "$IDX"
    check "crane: digest --platform linux/arm64" "${CR[@]}" digest --platform linux/arm64 "$C_REPO:multi" \
      && expect "crane: linux/arm64 child digest" "$OUT" "$ARM"
  fi

  check "crane: tag big -> big-alias" "${CR[@]}" tag "$C_REPO:big" big-alias
  check "crane: ls" "${CR[@]}" ls "$C_REPO"
  expect "crane: ls lists big, big-alias, multi" \
    "$(printf '%s\n' "$OUT" | grep -xE 'big|big-alias|multi' | sort | tr '\n' ' ')" \
    "$( ( echo big; echo big-alias; [ -n "${IDX:-}" ] && echo multi ) | sort | tr '\n' ' ')"

  check "crane: copy to another repository (cross-repo blob mount)" "${CR[@]}" copy "$C_REPO:big" "$C_REPO2:copy"
  check "crane: digest of copy" "${CR[@]}" digest "$C_REPO2:copy" && expect "crane: copy has the same digest" "$OUT" "$PUSHED"

  check "crane: delete $C_REPO2@<digest>" "${CR[@]}" delete "$C_REPO2@$PUSHED"
  check "crane: deleted manifest is gone (404 MANIFEST_UNKNOWN)" gone "${CR[@]}" manifest "$C_REPO2@$PUSHED"
  check "crane: same manifest still served by the original repository" "${CR[@]}" digest "$C_REPO@$PUSHED"
  check "crane: big layer blob still served by the original repository" sh -c \
    '"$@" | cmp - "$0"' "$T/big.tar.gz" "${CR[@]}" blob "$C_REPO@$BIG_SHA"
  rm -f "$T/big.tar.gz"
fi

# ======================================================================== oras
O_REPO="$REG/$NS/oras-$RUN"
A_TYPE="application/vnd.lading.roundtrip.v1"
SIG_TYPE="application/vnd.lading.signature.v1"
mkdir -p "$T/oras-src" "$T/oras-pull" "$T/oras-att-pull"
head -c 4099 /dev/urandom | base64 >"$T/oras-src/readme.txt"
head -c 5242887 /dev/urandom >"$T/oras-src/data.bin"
: >"$T/oras-src/empty.dat"   # zero-length blob (sha256:e3b0c442...)
printf '{"signed":"%s"}\n' "$(head -c 32 /dev/urandom | base64)" >"$T/oras-src/sig.json"

if check "oras: push 3 files (incl. empty) with artifactType -> $O_REPO:v1" \
     sh -c 'cd "$1" && shift && exec "$@"' _ "$T/oras-src" \
     oras push "${ORAS[@]}" --format json --artifact-type "$A_TYPE" --annotation "org.example.run=$RUN" \
       --export-manifest "$T/oras-m.json" "$O_REPO:v1" readme.txt:text/plain data.bin empty.dat; then
  printf '%s' "$OUT" >"$T/oras-push.json"
  O_DGST="$(json "$T/oras-push.json" 'd["digest"]')"
  expect "oras: exported manifest sha256 == pushed digest" "$(sha "$T/oras-m.json")" "$O_DGST"

  check "oras: manifest fetch" sh -c '"$@" >"$0"' "$T/oras-m.fetched" oras manifest fetch "${ORAS[@]}" "$O_REPO:v1"
  check "oras: fetched manifest byte-identical to pushed manifest" cmp "$T/oras-m.fetched" "$T/oras-m.json"
  expect "oras: artifactType preserved" "$(json "$T/oras-m.fetched" 'd["artifactType"]')" "$A_TYPE"

  check "oras: pull $O_REPO:v1" sh -c 'cd "$1" && shift && exec "$@"' _ "$T/oras-pull" oras pull "${ORAS[@]}" "$O_REPO:v1"
  check "oras: pulled files byte-identical (readme.txt, data.bin, empty.dat)" sh -c \
    'for f in readme.txt data.bin empty.dat; do cmp "$1/$f" "$2/$f" || exit 1; done' _ "$T/oras-src" "$T/oras-pull"

  # --- referrers: attach a signature-like artifact with subject = v1 ---
  if check "oras: attach referrer ($SIG_TYPE) to v1" \
       sh -c 'cd "$1" && shift && exec "$@"' _ "$T/oras-src" \
       oras attach "${ORAS[@]}" --format json --artifact-type "$SIG_TYPE" \
         --export-manifest "$T/att-m.json" "$O_REPO:v1" sig.json:application/json; then
    printf '%s' "$OUT" >"$T/oras-att.json"
    A_DGST="$(json "$T/oras-att.json" 'd["digest"]')"
    expect "oras: attach manifest subject == v1 digest" "$(json "$T/att-m.json" 'd["subject"]["digest"]')" "$O_DGST"

    has_ref() { # <discover json file>: referrer listed with the right artifactType?
      python3 - "$1" "$A_DGST" "$SIG_TYPE" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
refs = d.get("referrers", d.get("manifests", []))
hit = [r for r in refs if r.get("digest") == sys.argv[2]]
if not hit:
    print("referrer %s not listed; got %s" % (sys.argv[2], json.dumps([r.get("digest") for r in refs])))
    sys.exit(1)
if hit[0].get("artifactType") != sys.argv[3]:
    print("referrer listed but artifactType=%r, want the manifest's artifactType %r" % (hit[0].get("artifactType"), sys.argv[3]))
    sys.exit(1)
print("found")
EOF
    }
    check "oras: discover" sh -c '"$@" >"$0"' "$T/disc.json" oras discover "${ORAS[@]}" --format json "$O_REPO:v1" \
      && check "oras: discover lists the attached referrer" has_ref "$T/disc.json"

    # Same, but forced through GET /v2/<name>/referrers/<digest> (OCI 1.1 referrers API).
    if oras discover "${ORAS[@]}" --distribution-spec v1.1-referrers-api --format json "$O_REPO:v1" \
         >"$T/disc-api.json" 2>"$T/disc-api.err"; then
      check "oras: referrers API (GET /v2/<name>/referrers/<digest>) lists the referrer" has_ref "$T/disc-api.json"
      check "oras: subject PUT answered with OCI-Subject: oras created no sha256-<digest> fallback tag" sh -c \
        '! oras repo tags "$@" | grep -qx "sha256-${0#sha256:}"' "$O_DGST" "${ORAS[@]}" "$O_REPO"
    elif [ "$REFERRERS_API" = auto ]; then
      skip "oras: referrers API" "registry has no OCI 1.1 referrers API ($(tail -n1 "$T/disc-api.err" | cut -c1-120)); oras used the sha256-<digest> tag schema"
      check "oras: fallback referrers tag sha256-<subject> exists" sh -c \
        'oras repo tags "$@" | grep -qx "sha256-${0#sha256:}"' "$O_DGST" "${ORAS[@]}" "$O_REPO"
    else
      fail "oras: referrers API (GET /v2/<name>/referrers/<digest>) lists the referrer" "$(tail -n1 "$T/disc-api.err")"
    fi

    check "oras: manifest fetch referrer" sh -c '"$@" >"$0"' "$T/att-m.fetched" oras manifest fetch "${ORAS[@]}" "$O_REPO@$A_DGST"
    check "oras: fetched referrer byte-identical to pushed (subject intact)" cmp "$T/att-m.fetched" "$T/att-m.json"
    check "oras: pull referrer" sh -c 'cd "$1" && shift && exec "$@"' _ "$T/oras-att-pull" oras pull "${ORAS[@]}" "$O_REPO@$A_DGST"
    check "oras: pulled referrer file byte-identical" cmp "$T/oras-att-pull/sig.json" "$T/oras-src/sig.json"

    # --- delete the referrer, it must disappear from the manifest store and from discover ---
    check "oras: manifest delete referrer" oras manifest delete "${ORAS[@]}" --force "$O_REPO@$A_DGST"
    check "oras: deleted referrer is gone (404)" gone oras manifest fetch "${ORAS[@]}" "$O_REPO@$A_DGST"
    not_listed() { oras discover "${ORAS[@]}" --format json "$O_REPO:v1" >"$T/disc2.json" && ! grep -q "${A_DGST#sha256:}" "$T/disc2.json"; }
    check "oras: discover no longer lists the deleted referrer" not_listed
    check "oras: subject v1 still intact after referrer delete" sh -c \
      'oras manifest fetch "$@" | cmp - "$0"' "$T/oras-m.json" "${ORAS[@]}" "$O_REPO:v1"
  fi
fi

finish
