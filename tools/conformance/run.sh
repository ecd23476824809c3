#!/usr/bin/env bash
# Run the official OCI distribution-spec conformance suite against a registry.
#
#   tools/conformance/run.sh <registry-url>      e.g. http://127.0.0.1:5055
#
# Two pinned versions of github.com/opencontainers/distribution-spec/conformance
# are fetched through the Go module proxy, compiled once and cached:
#   v1.1.1  released suite (ginkgo based, compiled with `go test -c`)
#   main    newer commit of main (rewritten suite, compiled with `go build`)
# The pins live in tools/conformance/<version>/go.mod (+ go.sum).
#
# Environment:
#   CONFORMANCE_VERSIONS   versions to run, space separated (default "v1.1.1 main")
#   CONFORMANCE_CACHE_DIR  binaries + reports (default tools/conformance/.cache, git-ignored)
#   CONFORMANCE_REBUILD=1  ignore cached binaries
#   CONFORMANCE_AUTOMATIC_CROSSMOUNT  v1.1.1 only: 1|0 -> assert mount without ?from= gives 201|202
#   CONFORMANCE_TLS        new suite only: enabled|insecure|disabled (default from URL scheme)
#   CONFORMANCE_BLOB_DIGEST_HEADER  new suite only: true (default) requires Docker-Content-Digest on blob GETs;
#                          false for a registry that redirects blob GETs to an object store, which cannot send it
#   CONFORMANCE_LABEL      printed after the version in the closing line (e.g. "redirects-off")
#   OCI_USERNAME / OCI_PASSWORD are passed through when set.
#
# Prints per version:  conformance <version>: N passed, N failed, N skipped
# Exits non-zero if any version failed, passed 0 specs, could not be built/run,
# or hit a configuration/connection error.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODULE="github.com/opencontainers/distribution-spec/conformance"

# version label -> pinned module version (must match <label>/go.mod)
declare -A PIN=(
  [v1.1.1]="v0.0.0-20250123160558-a139cc423184"  # tag v1.1.1 = commit a139cc4 (2025-01-23T16:05:58Z)
  [main]="v0.0.0-20260831232431-97274622c111"    # main @ 97274622c111 (2026-08-31)
)
declare -A KIND=([v1.1.1]=gotest [main]=gobuild)

usage() { echo "usage: $0 <registry-url>   (e.g. http://127.0.0.1:5055)" >&2; exit 2; }
[[ $# -eq 1 && -n "$1" ]] || usage
URL="${1%/}"
[[ "$URL" =~ ^https?://[^/]+$ ]] || { echo "error: registry url must look like http(s)://host[:port], got '$1'" >&2; exit 2; }
command -v go >/dev/null || { echo "error: go is not installed" >&2; exit 2; }

CACHE="${CONFORMANCE_CACHE_DIR:-$HERE/.cache}"
VERSIONS="${CONFORMANCE_VERSIONS:-v1.1.1 main}"
NS1="conformance/a"
NS2="conformance/b"

log() { printf '[conformance] %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }

# Build (or reuse) the binary for one version; prints its path.
build() {
  local label="$1" pin="${PIN[$1]}" kind="${KIND[$1]}"
  local src="$HERE/$label" out="$CACHE/$pin" bin key
  bin="$out/conformance-$label"
  [[ -f "$src/go.mod" ]] || { log "missing $src/go.mod"; return 1; }
  grep -q "$MODULE $pin" "$src/go.mod" || { log "$src/go.mod does not pin $MODULE $pin"; return 1; }
  key="$( { go version; echo "$kind"; cat "$src/go.mod"; cat "$src/go.sum" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)"
  if [[ "${CONFORMANCE_REBUILD:-0}" != 1 && -x "$bin" && "$(cat "$out/key" 2>/dev/null)" == "$key" ]]; then
    log "$label: using cached $bin"
    printf '%s\n' "$bin"; return 0
  fi
  local t0 work; t0="$(now)"
  mkdir -p "$out"; work="$(mktemp -d "$out/build.XXXXXX")"
  # Build in a copy, outside any VCS checkout semantics, so the repo files stay untouched.
  cp "$src/go.mod" "$work/"; [[ -f "$src/go.sum" ]] && cp "$src/go.sum" "$work/"
  log "$label: building $MODULE@$pin ($kind)"
  local rc=0
  if [[ "$kind" == gotest ]]; then
    # upstream is a ginkgo test package: compile it with `go test -c`.
    # -mod=mod lets go resolve the suite's test deps and verify them against sum.golang.org.
    # GONOSUMDB: the checksum-db mirror reachable here lacks this pseudo-version; the
    # committed go.sum pins its hash instead.
    (cd "$work" && GONOSUMDB="$MODULE" GOFLAGS="-mod=mod -buildvcs=false" go test -c -o "$work/bin" "$MODULE") >&2 || rc=$?
  else
    (cd "$work" && GOFLAGS="-mod=readonly -buildvcs=false" \
      go build -trimpath -ldflags "-X main.Version=$pin" -o "$work/bin" "$MODULE") >&2 || rc=$?
  fi
  if [[ $rc -ne 0 || ! -x "$work/bin" ]]; then
    log "$label: build FAILED (rc=$rc) after $(elapsed "$t0")"
    rm -rf "$work"; return 1
  fi
  # keep the resolved go.sum next to the binary (commit it to tools/conformance/$label if missing there)
  cp "$work/go.sum" "$out/go.sum.resolved" 2>/dev/null || true
  mv -f "$work/bin" "$bin"; echo "$key" >"$out/key"; rm -rf "$work"
  log "$label: built in $(elapsed "$t0")"
  printf '%s\n' "$bin"
}

# Count testcases in a junit file: prints "passed failed skipped".
junit_counts() {
  node -e '
    const x = require("fs").readFileSync(process.argv[1], "utf8");
    let p = 0, f = 0, s = 0;
    const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
    let m;
    while ((m = re.exec(x))) {
      const attrs = m[1], body = m[3] || "";
      const st = (attrs.match(/\bstatus="([^"]*)"/) || [])[1] || "";
      if (/<(failure|error)\b/.test(body) || /^(failed|failure|error|panicked|interrupted|timedout)$/i.test(st)) f++;
      else if (/<skipped\b/.test(body) || /^(skipped|pending|disabled)$/i.test(st)) s++;
      else p++;
    }
    console.log(p, f, s);' "$1"
}

run_version() {
  local label="$1" bin="$2" rep="$CACHE/reports/$label" rc=0 logf
  rm -rf "$rep"; mkdir -p "$rep"; logf="$rep/output.log"
  local -a env=(env)
  for v in $(compgen -e); do [[ "$v" == OCI_* ]] && env+=(-u "$v"); done  # no stray OCI_* settings
  [[ -n "${OCI_USERNAME:-}" ]] && env+=("OCI_USERNAME=$OCI_USERNAME")
  [[ -n "${OCI_PASSWORD:-}" ]] && env+=("OCI_PASSWORD=$OCI_PASSWORD")
  if [[ "${KIND[$label]}" == gotest ]]; then
    env+=(
      OCI_ROOT_URL="$URL" OCI_NAMESPACE="$NS1" OCI_CROSSMOUNT_NAMESPACE="$NS2"
      OCI_TEST_PULL=1 OCI_TEST_PUSH=1 OCI_TEST_CONTENT_DISCOVERY=1 OCI_TEST_CONTENT_MANAGEMENT=1
      OCI_DEBUG=0 OCI_HIDE_SKIPPED_WORKFLOWS=0 OCI_DELETE_MANIFEST_BEFORE_BLOBS=1
      OCI_REPORT_DIR="$rep"
    )
    # mount without ?from=: unset = not asserted; 1 = expect 201, 0 = expect 202
    [[ -n "${CONFORMANCE_AUTOMATIC_CROSSMOUNT:-}" ]] && env+=(OCI_AUTOMATIC_CROSSMOUNT="$CONFORMANCE_AUTOMATIC_CROSSMOUNT")
    (cd "$rep" && "${env[@]}" "$bin" -test.v -test.timeout 30m -ginkgo.no-color) >"$logf" 2>&1 || rc=$?
  else
    local host="${URL#*://}" tls=enabled
    [[ "$URL" == http://* ]] && tls=disabled
    env+=(
      OCI_VERSION=dev OCI_REGISTRY="$host" OCI_TLS="${CONFORMANCE_TLS:-$tls}"
      OCI_REPO1="$NS1" OCI_REPO2="$NS2" OCI_RESULTS_DIR="$rep" OCI_LOG=warn
      OCI_CONFIGURATION=/dev/null   # never pick up a stray ./oci-conformance.yaml
      OCI_API_PULL=true OCI_API_PUSH=true OCI_API_REFERRER=true OCI_API_TAGS_LIST=true
      OCI_API_TAGS_DELETE=true OCI_API_MANIFESTS_DELETE=true OCI_API_BLOBS_DELETE=true
      OCI_API_BLOBS_MOUNT_ANONYMOUS=true OCI_API_BLOBS_UPLOAD_CANCEL=true
      OCI_API_BLOBS_DIGEST_HEADER="${CONFORMANCE_BLOB_DIGEST_HEADER:-true}" OCI_API_MANIFESTS_DIGEST_HEADER=true OCI_API_MANIFESTS_TAG_PARAM=true
      OCI_DATA_SPARSE=false OCI_DATA_SHA512=true
    )
    (cd "$rep" && "${env[@]}" "$bin") >"$logf" 2>&1 || rc=$?
  fi
  local p=0 f=0 s=0 bad=0 why=""
  local summary=""
  [[ "${KIND[$label]}" == gotest ]] &&
    summary="$(sed -nE 's/.*\b([0-9]+) Passed \| ([0-9]+) Failed \| [0-9]+ Pending \| ([0-9]+) Skipped.*/\1 \2 \3/p' "$logf" | tail -1)"
  if [[ -n "$summary" ]]; then
    read -r p f s <<<"$summary"   # ginkgo's own spec counts (junit adds suite-level nodes)
  elif [[ -s "$rep/junit.xml" ]]; then
    read -r p f s < <(junit_counts "$rep/junit.xml") || { bad=1; why="cannot parse junit.xml"; }
  else
    bad=1; why="no junit.xml produced (binary could not run or configuration error)"
  fi
  # config/connection problems that may not show up as failed specs
  if grep -qE 'failed to (load config|setup test|run tests)|unsupported config version|connection refused|no such host|[Ff]ailed to connect|A BeforeSuite node failed|\[BeforeSuite\] \[FAILED\]|\[PANICKED\]' "$logf"; then
    bad=1; why="${why:+$why; }configuration/connection error (see $logf)"
  fi
  [[ $rc -ne 0 && $f -eq 0 ]] && { bad=1; why="${why:+$why; }binary exited $rc with no failed spec"; }
  [[ $p -eq 0 ]] && { bad=1; why="${why:+$why; }0 specs passed"; }
  [[ $f -gt 0 || $rc -ne 0 ]] && bad=1
  # show the suite's own summary and failures for humans
  if [[ "${KIND[$label]}" == gotest ]]; then
    grep -E '^\s*\[FAIL\]|^(Ran [0-9]+ of|FAIL!|SUCCESS!|PASS|FAIL)' "$logf" >&2 || true
  else
    sed -n '/^OCI Conformance Result/,/^Data conformance/p' "$logf" >&2 || true
    grep -E ': (FAIL|Error)$' "$logf" | head -50 >&2 || true
  fi
  [[ -n "$why" ]] && log "$label: $why"
  log "$label: report in $rep (junit.xml, report.html, output.log)"
  echo "conformance $label${CONFORMANCE_LABEL:+/$CONFORMANCE_LABEL}: $p passed, $f failed, $s skipped"
  return "$bad"
}

# Fail fast (but still per version) if the registry does not answer at all.
if ! curl -ksS -o /dev/null --max-time 10 "$URL/v2/" 2>/dev/null; then
  log "registry $URL is unreachable"
  for label in $VERSIONS; do echo "conformance $label${CONFORMANCE_LABEL:+/$CONFORMANCE_LABEL}: 0 passed, 0 failed, 0 skipped"; done
  exit 1
fi

status=0
t_build="$(now)"
declare -A BIN=()
for label in $VERSIONS; do
  [[ -n "${PIN[$label]:-}" ]] || { log "unknown version '$label' (known: ${!PIN[*]})"; exit 2; }
  BIN[$label]="$(build "$label")" || BIN[$label]=""
done
log "build step for [$VERSIONS] took $(elapsed "$t_build")"
for label in $VERSIONS; do
  if [[ -z "${BIN[$label]}" ]]; then
    log "$label: no binary, counting as failure"
    echo "conformance $label${CONFORMANCE_LABEL:+/$CONFORMANCE_LABEL}: 0 passed, 0 failed, 0 skipped"
    status=1; continue
  fi
  run_version "$label" "${BIN[$label]}" || status=1
done
exit "$status"
