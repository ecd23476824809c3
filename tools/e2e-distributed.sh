#!/usr/bin/env bash
# The distributed mode end to end: tools/infra (Postgres, Kafka, MinIO) and tools/cluster (gateway x2, blob x2,
# manifest, nginx), then the OCI conformance suite and the real-client round trips through the load balancer.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/infra/infra up >/dev/null
url="$(tools/cluster/cluster up | tail -n 1)"
url="${url#LADING_URL=}"
cleanup() { tools/cluster/cluster down >/dev/null 2>&1 || true; }
trap cleanup EXIT
echo "cluster up behind $url"
rc=0
CONFORMANCE_AUTOMATIC_CROSSMOUNT=1 bash tools/conformance/run.sh "$url" || rc=1
bash tools/clients/install.sh || rc=1
bash tools/clients/roundtrip.sh "${url#http://}" || rc=1
if grep -h '"level":50' .infra/logs/cluster-*.log 2>/dev/null | grep -q .; then
  echo "cluster processes logged errors during the run:"; grep -h '"level":50' .infra/logs/cluster-*.log | tail -n 20; rc=1
fi
exit "$rc"
