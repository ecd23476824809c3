#!/usr/bin/env bash
# `npm test`: everything CI checks, fastest first. Installs what it needs (Go tools, skopeo) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
# The runtime every stage below uses (package.json engines: >=24): the node on the PATH when it is new enough,
# else the one tools/node/ensure-node24 installs into the per-user cache.
node_path="$(tools/node/ensure-node24 --path)" # its own statement, so that set -e stops on a failed install
eval "$node_path"
echo "== node $(node --version) at $(command -v node)"
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
results="$(mktemp -d)"
# What this run starts, it stops: infrastructure already running (tools/infra/infra up) is left running.
started_infra=false
cleanup() {
  rm -rf "$results"
  if [ "$started_infra" = true ]; then echo "== stopping the infrastructure this run started"; tools/infra/infra down >/dev/null || true; fi
}
trap cleanup EXIT

echo "== infrastructure: PostgreSQL, Kafka, MinIO on loopback (tools/infra)"
tools/infra/infra status >/dev/null 2>&1 || started_infra=true
tools/infra/infra up
# The chart's checks need helm and a kube-apiserver built from the Go module proxy: minutes the first time on a fresh
# machine, nothing once cached. They build in the background while the other stages run: helm first at normal
# priority (the jest stage's chart spec waits for it), then kubecheck at the lowest; the helm stage at the end waits
# for both.
echo "== building the Helm chart's check tools in the background (tools/helm/install)"
{ tools/helm/install helm && nice -n 19 tools/helm/install kubecheck; } >"$results/helm-install.log" 2>&1 &
helm_install_pid=$!
# Each stage runs even when an earlier one failed; the closing lines name every failed stage and its failing checks,
# so the end of a long CI log says what went wrong.
declare -A stage_rc=()
run_stage() { # name log-file command...
  local name="$1" log="$2"; shift 2
  local rc=0
  "$@" 2>&1 | tee "$log" || rc=$?
  stage_rc[$name]=$rc
}
echo "== typecheck"
run_stage typecheck "$results/typecheck.log" npm run -s typecheck
echo "== lint (includes module boundaries)"
run_stage lint "$results/lint.log" npm run -s lint
echo "== CNCF Distribution v3, the pull-through specs' upstream (tools/distribution/install)"
# Once per machine (go install, a few minutes cold); installed here so that two jest workers do not both build it.
tools/distribution/install >/dev/null || echo "test: Distribution could not be installed; the pull-through specs will fail"
echo "== the registry clients: skopeo (apt-get), crane and oras (go install) (tools/clients/install.sh)"
# Also once per machine, before the jest stage's pull-through-clients spec and the e2e stages use them.
bash tools/clients/install.sh >/dev/null || echo "test: the registry clients could not be installed; the client specs and stages will fail"
echo "== unit and API tests (jest)"
run_stage jest "$results/jest.log" env NODE_OPTIONS=--experimental-vm-modules npx jest --ci --json --outputFile="$results/jest.json"
echo "== the web console in headless Chromium against the embedded registry, auth on and off (tools/console/browser.sh)"
run_stage console "$results/console.log" bash tools/console/browser.sh
echo "== end to end: conformance suite and real clients against the embedded registry"
run_stage e2e "$results/e2e.log" bash tools/e2e.sh
# The distributed stages run this checkout's cluster on a port layout that nothing else holds right now (another
# checkout's cluster, say), so a stray listener cannot fail them.
LADING_CLUSTER_PORT="$(tools/cluster/cluster free-base)"; export LADING_CLUSTER_PORT
echo "== end to end: the same against the distributed cluster behind its load balancer (base port $LADING_CLUSTER_PORT)"
run_stage e2e-distributed "$results/e2e-distributed.log" bash tools/e2e-distributed.sh
echo "== faults: kill -9 of service processes, Postgres/MinIO restarts and a Kafka outage under 16 pushers (short form)"
run_stage faults "$results/faults.log" bash tools/faults/run.sh --short

echo "== helm chart: lint, template, refused values, and the objects against kube-apiserver (dry-run)"
wait "$helm_install_pid" || true
cat "$results/helm-install.log"
run_stage helm "$results/helm.log" bash tools/helm/check

echo "== summary"
failed_stages=0
for name in typecheck lint jest console e2e e2e-distributed faults helm; do
  rc="${stage_rc[$name]}"
  if [ "$rc" -eq 0 ]; then echo "stage $name: ok"; continue; fi
  failed_stages=$((failed_stages + 1))
  echo "stage $name: FAILED (exit $rc)"
  log="$results/$name.log"; [ "$name" = jest ] && log="$results/jest.log"
  # The failing checks of that stage, as the stage printed them.
  grep -E '^(FAIL|\[[ 0-9.]+s\] FAIL|  ● |  FAIL  )|✕|conformance [^ ]+: [0-9]+ passed, [1-9]|: (FAIL|Error)$|error:|error TS[0-9]+|^/.*\.(ts|cjs)$|^ +[0-9]+:[0-9]+ +error' "$log" | head -n 25 | sed 's/^/    /' || true
done

node -e '
  const fs = require("fs");
  const [jestFile, ...e2eFiles] = process.argv.slice(1);
  let passed = 0, failed = 0;
  try { const j = JSON.parse(fs.readFileSync(jestFile, "utf8")); passed += j.numPassedTests; failed += j.numFailedTests; } catch { failed += 1; }
  for (const file of e2eFiles) {
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
      const m = /^(conformance \S+|clients|tls|faults|webhooks|scanner|telemetry|helm|console): (\d+) passed, (\d+) failed/.exec(line);
      if (m) { passed += Number(m[2]); failed += Number(m[3]); }
    }
  }
  console.log(`total: ${passed} passed, ${failed} failed`);
' "$results/jest.json" "$results/console.log" "$results/e2e.log" "$results/e2e-distributed.log" "$results/faults.log" "$results/helm.log"
[ "$failed_stages" -eq 0 ]
