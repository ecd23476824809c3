#!/usr/bin/env bash
# The fault test: kill -9 of service processes and Postgres/MinIO/Kafka outages under 16 concurrent pushers, then
# checks that nothing acknowledged was lost. `--short` (default, part of npm test) or `--soak` (10 minutes).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec node --import tsx tools/faults/fault-test.ts "${@:---short}"
