#!/usr/bin/env bash
# `npm test`: everything CI checks, fastest first. Installs what it needs (Go tools, skopeo) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT

echo "== infrastructure: PostgreSQL, Kafka, MinIO on loopback (tools/infra)"
tools/infra/infra up
echo "== typecheck"
npx tsc -p tsconfig.json --noEmit
echo "== lint (includes module boundaries)"
npm run -s lint
echo "== unit and API tests (jest)"
jest_rc=0
NODE_OPTIONS=--experimental-vm-modules npx jest --ci --json --outputFile="$results/jest.json" || jest_rc=$?
echo "== end to end: conformance suite and real clients against the embedded registry"
e2e_rc=0
bash tools/e2e.sh | tee "$results/e2e.log" || e2e_rc=$?
echo "== end to end: the same against the distributed cluster behind its load balancer"
bash tools/e2e-distributed.sh | tee "$results/e2e-distributed.log" || e2e_rc=$?
echo "== faults: kill -9 of service processes, Postgres/MinIO restarts and a Kafka outage under 16 pushers (short form)"
bash tools/faults/run.sh --short | tee "$results/faults.log" || e2e_rc=$?

node -e '
  const fs = require("fs");
  const [jestFile, ...e2eFiles] = process.argv.slice(1);
  let passed = 0, failed = 0;
  try { const j = JSON.parse(fs.readFileSync(jestFile, "utf8")); passed += j.numPassedTests; failed += j.numFailedTests; } catch { failed += 1; }
  for (const file of e2eFiles) {
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
      const m = /^(conformance \S+|clients|faults): (\d+) passed, (\d+) failed/.exec(line);
      if (m) { passed += Number(m[2]); failed += Number(m[3]); }
    }
  }
  console.log(`total: ${passed} passed, ${failed} failed`);
' "$results/jest.json" "$results/e2e.log" "$results/e2e-distributed.log" "$results/faults.log"
[ "$jest_rc" -eq 0 ] && [ "$e2e_rc" -eq 0 ]
