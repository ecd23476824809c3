#!/usr/bin/env bash
# Round trips through a registry served over TLS (the cluster's nginx terminating it, or the registry's own
# listener), with the certificate checked against a CA the clients are given, never skipped:
#
#   tools/clients/tls-roundtrip.sh <https://host:port> <ca-file>
#
# curl speaks HTTP/2 where the server offers it (ALPN) and HTTP/1.1 where asked: uploads streamed in a PATCH, a
# monolithic PUT, blob GETs and a Range. Every Location the registry answers must resolve to https on the URL's own
# origin, and with auth on the token realm must be https too (behind a proxy: what `http.host` and
# `http.trustedProxies` are for). crane, skopeo and oras then push and pull through it, trusting only the CA.
# Optional environment:
#   REGISTRY_USERNAME / REGISTRY_PASSWORD   log in (token auth), with curl and with every client
#   TLS_HTTP2=require|auto   (default auto) require that the server negotiates HTTP/2, or only report it
#   TLS_ROUNDTRIP_NAMESPACE  repository prefix (default "tls")
# Prints one line per check and finally "tls: N passed, N failed".
set -uo pipefail

URL="${1:-}" CA="${2:-}"
if [ "$#" -ne 2 ] || [ "${URL#https://}" = "$URL" ] || [ ! -r "$CA" ]; then
  echo "usage: $0 <https://host:port> <ca-file>" >&2
  exit 2
fi
URL="${URL%/}"; REG="${URL#https://}"; CA="$(realpath "$CA")"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLIENTS_BIN="${CLIENTS_BIN:-$HERE/.cache/bin}"
export CLIENTS_BIN
"$HERE/install.sh" -q || exit 2
export PATH="$CLIENTS_BIN:$PATH"
HTTP2="${TLS_HTTP2:-auto}"
case "$HTTP2" in require|auto) ;; *) echo "TLS_HTTP2 must be 'require' or 'auto'" >&2; exit 2 ;; esac
NS="${TLS_ROUNDTRIP_NAMESPACE:-tls}"
RUN="$(date +%s)-$$"

T="$(mktemp -d "${TMPDIR:-/tmp}/lading-tls.XXXXXX")"
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/docker" "$T/certs" "$T/log"
echo '{"auths":{}}' >"$T/docker/config.json"
export DOCKER_CONFIG="$T/docker" REGISTRY_AUTH_FILE="$T/docker/config.json"
# skopeo reads a directory of CA files; crane (Go) reads SSL_CERT_FILE; oras takes --ca-file.
cp "$CA" "$T/certs/ca.crt"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$T/policy.json"

# The shared check helpers (pass, fail, check, expect, finish, sha), reporting as `tls: N passed, N failed`.
CHECKS_LABEL=tls
# shellcheck source=tools/clients/checks.sh
. "$HERE/checks.sh"

# curl with the CA, the token when there is one; -D writes the response head to $T/head.
TOKEN=""
c() { curl -sS --cacert "$CA" ${TOKEN:+-H "Authorization: Bearer $TOKEN"} -D "$T/head" "$@"; }
header() { tr -d '\r' <"$T/head" | awk -v n="$(echo "$1" | tr 'A-Z' 'a-z')" -F': ' 'tolower($1)==n{v=$2} END{print v}'; }
# A Location resolved against the URL it answered: it must be https on the registry's origin.
resolved() { python3 -c 'import sys, urllib.parse as u; print(u.urljoin(sys.argv[1], sys.argv[2]))' "$1" "$2"; }
on_origin() { case "$1" in "$URL"/*) return 0 ;; *) echo "resolves to '$1', not under $URL/"; return 1 ;; esac; }

echo "registry: $URL (CA $CA)"

# ------------------------------------------------------------ TLS and protocols
if ! check "GET /v2/ over TLS, certificate checked against the CA" c -o /dev/null -w '%{http_code} %{http_version}' "$URL/v2/"; then finish; fi
read -r code version <<<"$OUT"
case "$code" in 200|401) pass "GET /v2/ -> $code over HTTP/$version" ;; *) fail "GET /v2/" "status $code" ;; esac
check "a client without the CA is refused the certificate" sh -c '! curl -sS -o /dev/null "$1/v2/"' _ "$URL"
PROTOCOLS=(--http1.1)
if [ "$version" = 2 ]; then PROTOCOLS=(--http2 --http1.1); pass "the server negotiates HTTP/2 (ALPN)"
elif [ "$HTTP2" = require ]; then fail "the server negotiates HTTP/2 (ALPN)" "curl got HTTP/$version"
else skip "HTTP/2" "the server offers HTTP/$version only"; fi

# ----------------------------------------------------------- auth: an https realm
if [ -n "${REGISTRY_USERNAME:-}" ]; then
  c -o /dev/null "$URL/v2/$NS/curl-$RUN/tags/list"
  realm="$(header www-authenticate | sed -n 's/.*realm="\([^"]*\)".*/\1/p')"
  check "the token realm is https on the registry's origin ($realm)" on_origin "$realm"
  if check "a token from the realm, over TLS" sh -c 'curl -sS -f --cacert "$1" -u "$2:$3" "$4?service=lading&scope=repository:$5:pull,push"' _ \
       "$CA" "$REGISTRY_USERNAME" "$REGISTRY_PASSWORD" "$realm" "$NS/curl-$RUN"; then
    TOKEN="$(printf '%s' "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("token") or d.get("access_token") or "")')"
  fi
fi

# ------------------------------------------- curl: uploads and pulls per protocol
head -c 33554467 /dev/urandom >"$T/blob.bin"
BLOB="$(sha "$T/blob.bin")"
for proto in "${PROTOCOLS[@]}"; do
  p="HTTP/${proto#--http}"
  repo="$NS/curl-$RUN"
  if check "$p: POST starts an upload (202)" c "$proto" -o /dev/null -w '%{http_code}' -X POST "$URL/v2/$repo/blobs/uploads/" \
       && expect "$p: POST answers 202" "$OUT" 202; then
    loc="$(resolved "$URL/v2/$repo/blobs/uploads/" "$(header location)")"
    check "$p: the upload's Location is https on the registry's origin" on_origin "$loc"
    # A chunked PATCH (no length up front, as docker sends a layer), streamed through the TLS terminator.
    check "$p: PATCH streams 32 MB" c "$proto" -o /dev/null -w '%{http_code}' -X PATCH -H 'Content-Type: application/octet-stream' \
      -H 'Transfer-Encoding: chunked' --data-binary "@$T/blob.bin" "$loc" && expect "$p: PATCH answers 202" "$OUT" 202
    loc="$(resolved "$loc" "$(header location)")"
    check "$p: the PATCH's Location is https on the registry's origin" on_origin "$loc"
    sep='?'; case "$loc" in *\?*) sep='&' ;; esac
    check "$p: PUT ?digest= completes the upload" c "$proto" -o /dev/null -w '%{http_code}' -X PUT "$loc${sep}digest=$BLOB" \
      && expect "$p: PUT answers 201" "$OUT" 201
    check "$p: the blob's Location is https on the registry's origin" on_origin "$(resolved "$loc" "$(header location)")"
  fi
  check "$p: GET the blob back, byte-identical" sh -c 'curl -sS -f -L --cacert "$1" ${2:+-H "Authorization: Bearer $2"} "$3" "$4" -o "$5" && cmp "$5" "$6"' _ \
    "$CA" "$TOKEN" "$proto" "$URL/v2/$repo/blobs/$BLOB" "$T/back.bin" "$T/blob.bin"
  rm -f "$T/back.bin"
  check "$p: GET Range bytes=1000000-1999999 -> 206, those bytes" sh -c \
    'curl -sS -f -L --cacert "$1" ${2:+-H "Authorization: Bearer $2"} "$3" -r 1000000-1999999 -o "$5" -w "%{http_code}" "$4" | grep -qx 206 && tail -c +1000001 "$6" | head -c 1000000 | cmp - "$5"' _ \
    "$CA" "$TOKEN" "$proto" "$URL/v2/$repo/blobs/$BLOB" "$T/range.bin" "$T/blob.bin"
  # A monolithic upload: POST ?digest= with the whole body.
  head -c 1048583 /dev/urandom >"$T/mono.bin"
  check "$p: monolithic POST ?digest= (201)" c "$proto" -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' \
    --data-binary "@$T/mono.bin" "$URL/v2/$repo/blobs/uploads/?digest=$(sha "$T/mono.bin")" && expect "$p: monolithic POST answers 201" "$OUT" 201
done

# ------------------------------------------------------------------ real clients
LOGINS=()
if [ -n "${REGISTRY_USERNAME:-}" ]; then
  check "crane auth login over TLS" sh -c 'printf %s "$REGISTRY_PASSWORD" | SSL_CERT_FILE="$1" crane auth login -u "$REGISTRY_USERNAME" --password-stdin "$2"' _ "$CA" "$REG"
  check "oras login over TLS" sh -c 'printf %s "$REGISTRY_PASSWORD" | oras login --ca-file "$1" -u "$REGISTRY_USERNAME" --password-stdin "$2"' _ "$CA" "$REG"
  LOGINS=(--creds "$REGISTRY_USERNAME:$REGISTRY_PASSWORD")
fi

# crane: a layer appended and pushed, pulled back byte for byte.
C_REPO="$REG/$NS/crane-$RUN"
python3 - "$T/layer.tar.gz" <<'EOF'
import io, os, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz", compresslevel=0) as tf:
    data = os.urandom(8 * 1024 * 1024 + 5)
    ti = tarfile.TarInfo("payload.bin"); ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
    tf.addfile(ti, io.BytesIO(data))
EOF
LAYER="$(sha "$T/layer.tar.gz")"
if check "crane: append + push over TLS -> $C_REPO:v1" env SSL_CERT_FILE="$CA" crane append -f "$T/layer.tar.gz" -t "$C_REPO:v1"; then
  PUSHED="$(printf '%s' "$OUT" | tail -n 1 | sed 's/.*@//')"
  check "crane: digest" env SSL_CERT_FILE="$CA" crane digest "$C_REPO:v1" && expect "crane: digest == pushed digest" "$OUT" "$PUSHED"
  check "crane: blob back, byte-identical" sh -c 'SSL_CERT_FILE="$1" crane blob "$2" | cmp - "$3"' _ "$CA" "$C_REPO@$LAYER" "$T/layer.tar.gz"
  check "crane without the CA is refused the certificate" sh -c '! SSL_CERT_FILE=/dev/null crane digest "$1"' _ "$C_REPO:v1"
fi

# skopeo: a multi-arch OCI layout copied in and out, trusting the CA directory.
S_REPO="$REG/$NS/skopeo-$RUN"
if check "skopeo: generate multi-arch OCI layout" sh -c 'python3 "$1" "$2" v1 >"$3"' _ "$HERE/mkoci.py" "$T/oci-src" "$T/oci-src.json"; then
  IDX="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["index"])' "$T/oci-src.json")"
  check "skopeo: copy --all oci: -> docker://$S_REPO:v1 over TLS" skopeo --policy "$T/policy.json" copy --all --preserve-digests --retry-times 0 \
    --dest-cert-dir "$T/certs" "${LOGINS[@]/#--creds/--dest-creds}" "oci:$T/oci-src:v1" "docker://$S_REPO:v1"
  check "skopeo: inspect --raw over TLS" skopeo inspect --raw --cert-dir "$T/certs" "${LOGINS[@]}" "docker://$S_REPO:v1" \
    && { printf '%s' "$OUT" >"$T/index.raw"; expect "skopeo: index digest == local index digest" "$(sha "$T/index.raw")" "$IDX"; }
  check "skopeo: copy --all docker:// -> oci: over TLS" skopeo --policy "$T/policy.json" copy --all --preserve-digests --retry-times 0 \
    --src-cert-dir "$T/certs" "${LOGINS[@]/#--creds/--src-creds}" "docker://$S_REPO:v1" "oci:$T/oci-dst:v1"
  check "skopeo: every blob byte-identical after the round trip" sh -c \
    'for f in "$1"/blobs/sha256/*; do cmp "$f" "$2/blobs/sha256/$(basename "$f")" || exit 1; done' _ "$T/oci-src" "$T/oci-dst"
fi

# oras: an artifact pushed and pulled with --ca-file.
O_REPO="$REG/$NS/oras-$RUN"
mkdir -p "$T/oras-src" "$T/oras-pull"
head -c 3145739 /dev/urandom >"$T/oras-src/data.bin"
check "oras: push over TLS -> $O_REPO:v1" sh -c 'cd "$1" && oras push --ca-file "$2" --registry-config "$3" "$4" data.bin' _ \
  "$T/oras-src" "$CA" "$REGISTRY_AUTH_FILE" "$O_REPO:v1"
check "oras: pull over TLS, byte-identical" sh -c 'cd "$1" && oras pull --ca-file "$2" --registry-config "$3" "$4" && cmp data.bin "$5"' _ \
  "$T/oras-pull" "$CA" "$REGISTRY_AUTH_FILE" "$O_REPO:v1" "$T/oras-src/data.bin"

finish
