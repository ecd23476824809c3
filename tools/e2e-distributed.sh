#!/usr/bin/env bash
# The distributed mode end to end: tools/infra (Postgres, Kafka, MinIO) and tools/cluster (gateway x2, blob x2,
# manifest, nginx), then the OCI conformance suite and the real-client round trips through the load balancer.
# Blob GETs are redirected to presigned MinIO URLs by default; the object store cannot send Docker-Content-Digest,
# so the newer suite's check of that header runs in a second pass with redirects switched off on the blob replicas.
# A third pass turns token auth on at the gateways: the suite and every client log in through the token flow.
# The Docker client (tools/clients/docker.sh, one private daemon) runs in the first and third passes, then once more
# over TLS: gateway-1 restarted serving HTTPS only on its own listener with a test CA's certificate, reached directly.
# A fourth runs the cluster behind TLS at nginx (HTTP/2 and HTTP/1.1) with auth on: uploads, pulls, Range, https
# Locations and token realm, and crane, skopeo and oras trusting only the test CA.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/infra/infra up >/dev/null
tools/cluster/cluster down >/dev/null 2>&1 || true
rm -f .infra/logs/cluster-*.log
# A database of its own for this run: the admin below is created only in a database that has none yet.
set -a; . .infra/env; set +a
E2E_DATABASE="e2e_$(date +%s)_$$"
node -e '
  const pg = require("pg");
  const client = new pg.Client({ connectionString: process.env.LADING_DATABASE_URL });
  client.connect().then(() => client.query(`CREATE DATABASE ${process.argv[1]}`)).then(() => client.end())
    .catch((err) => { console.error(`cannot create the e2e database: ${err.message}`); process.exit(1); });' "$E2E_DATABASE"
export LADING_DATABASE_URL="${LADING_DATABASE_URL%/*}/$E2E_DATABASE"
drop_database() {
  node -e '
    const pg = require("pg");
    const url = new URL(process.env.LADING_DATABASE_URL); url.pathname = "/lading";
    const client = new pg.Client({ connectionString: url.toString() });
    client.connect().then(() => client.query(`DROP DATABASE IF EXISTS ${process.argv[1]} WITH (FORCE)`)).then(() => client.end())
      .catch(() => process.exit(0));' "$E2E_DATABASE"
}
DOCKERD_DIR="" TLS_DIR=""
cleanup() {
  tools/cluster/cluster down >/dev/null 2>&1 || true; drop_database
  [ -z "$DOCKERD_DIR" ] || bash tools/clients/dockerd.sh stop "$DOCKERD_DIR"; rm -rf "$TLS_DIR"
}
trap cleanup EXIT
ADMIN_USER=e2e-admin
ADMIN_PASSWORD="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
# The webhook check below subscribes a receiver on 127.0.0.1, which only an allow-listed address may be.
url="$(LADING_WEBHOOKS_ALLOWLIST=127.0.0.1 LADING_ADMIN_USER="$ADMIN_USER" LADING_ADMIN_PASSWORD="$ADMIN_PASSWORD" tools/cluster/cluster up | tail -n 1)"
url="${url#LADING_URL=}"
echo "cluster up behind $url (blob GETs redirect to MinIO)"
rc=0
CONFORMANCE_AUTOMATIC_CROSSMOUNT=1 CONFORMANCE_BLOB_DIGEST_HEADER=false CONFORMANCE_LABEL=redirects \
  bash tools/conformance/run.sh "$url" || rc=1
bash tools/clients/install.sh || rc=1
bash tools/clients/roundtrip.sh "${url#http://}" || rc=1
# One private Docker daemon for the stage; without one the stage fails, once, and the rest still runs.
if daemon="$(bash tools/clients/dockerd.sh start)"; then
  eval "$daemon"; export DOCKER_HOST DOCKER_TLS_NAME
  TLS_DIR="$(mktemp -d)"
  node --import tsx tools/clients/test-ca.ts "$TLS_DIR" 127.0.0.1 "$DOCKER_TLS_NAME"
  # Blob GETs are redirected to MinIO here: the daemon follows the presigned URLs.
  bash tools/clients/docker.sh "${url#http://}" || rc=1
else
  printf 'FAIL  docker: no Docker daemon (tools/clients/dockerd.sh start failed)\nclients: 0 passed, 1 failed\n'; rc=1
fi
# A push through the load balancer reaches a subscriber as a signed CloudEvent and one Distribution push, via the
# outbox, Kafka and the webhooks service.
if node --import tsx tools/webhooks-soak/distributed-check.ts "$url" "$ADMIN_USER" "$ADMIN_PASSWORD"; then
  echo "webhooks: 1 passed, 0 failed"
else
  echo "webhooks: 0 passed, 1 failed"; rc=1
fi

echo "restarting the blob replicas with redirects off"
for name in blob-1 blob-2; do
  tools/cluster/cluster kill "$name"
  LADING_STORAGE_REDIRECT=false tools/cluster/cluster start "$name"
done
CONFORMANCE_VERSIONS=main CONFORMANCE_AUTOMATIC_CROSSMOUNT=1 CONFORMANCE_LABEL=streamed \
  bash tools/conformance/run.sh "$url" || rc=1

echo "restarting the gateways with token auth on"
for name in gateway-1 gateway-2; do
  tools/cluster/cluster kill "$name"
  LADING_AUTH_ENABLED=true tools/cluster/cluster start "$name"
done
OCI_USERNAME="$ADMIN_USER" OCI_PASSWORD="$ADMIN_PASSWORD" CONFORMANCE_AUTOMATIC_CROSSMOUNT=0 CONFORMANCE_LABEL=auth \
  bash tools/conformance/run.sh "$url" || rc=1
REGISTRY_USERNAME="$ADMIN_USER" REGISTRY_PASSWORD="$ADMIN_PASSWORD" bash tools/clients/roundtrip.sh "${url#http://}" || rc=1
if [ -n "$DOCKERD_DIR" ]; then
  REGISTRY_USERNAME="$ADMIN_USER" REGISTRY_PASSWORD="$ADMIN_PASSWORD" bash tools/clients/docker.sh "${url#http://}" || rc=1
  # TLS at a gateway's own listener: gateway-1 serves HTTPS only with the test CA's certificate, and it, the blob
  # replicas (streaming, no redirects to MinIO's plain HTTP) and the manifest service name its https URL in realm and
  # Location headers. The load balancer is stopped, so a request sent anywhere but to gateway-1 over TLS fails.
  gateway="$(tools/cluster/cluster ports | sed -n 's/^gateway-1=//p')"
  tls_url="https://$DOCKER_TLS_NAME:$gateway"
  restart_for_tls() {
    local name
    tools/cluster/cluster kill nginx || return 1
    for name in blob-1 blob-2 manifest-1; do
      tools/cluster/cluster kill "$name" || return 1
      LADING_HTTP_HOST="$tls_url" LADING_STORAGE_REDIRECT=false tools/cluster/cluster start "$name" || return 1
    done
    tools/cluster/cluster kill gateway-1 || return 1
    LADING_AUTH_ENABLED=true LADING_HTTP_HOST="$tls_url" LADING_HTTP_TLS_CERTIFICATE="$TLS_DIR/tls.crt" \
      LADING_HTTP_TLS_KEY="$TLS_DIR/tls.key" tools/cluster/cluster start gateway-1
  }
  echo "restarting gateway-1 serving TLS only as $tls_url, blob and manifest replicas naming it"
  if restart_for_tls; then
    REGISTRY_USERNAME="$ADMIN_USER" REGISTRY_PASSWORD="$ADMIN_PASSWORD" DOCKER_TLS_DIR="$TLS_DIR" \
      bash tools/clients/docker.sh "127.0.0.1:$gateway" || rc=1
  else
    printf 'FAIL  docker: gateway-1 did not restart serving TLS\nclients: 0 passed, 1 failed\n'; rc=1
  fi
fi

# TLS terminated at the load balancer, as a production deployment runs it: nginx with a certificate from a test CA,
# HTTP/2 and HTTP/1.1, every process's http.host the https URL, token auth on. Blob GETs stream through nginx (no
# redirect to MinIO's plain HTTP), so the clients' reads cross TLS and HTTP/2 too. Prints `tls: ...`.
echo "restarting the cluster with TLS at its load balancer"
tools/cluster/cluster down >/dev/null
if tls_url="$(LADING_CLUSTER_TLS=1 LADING_AUTH_ENABLED=true LADING_STORAGE_REDIRECT=false tools/cluster/cluster up | tail -n 1)"; then
  REGISTRY_USERNAME="$ADMIN_USER" REGISTRY_PASSWORD="$ADMIN_PASSWORD" TLS_HTTP2=require \
    bash tools/clients/tls-roundtrip.sh "${tls_url#LADING_URL=}" "$(tools/cluster/cluster ca)" || rc=1
else
  echo "tls: 0 passed, 1 failed (the cluster did not start with TLS)"; rc=1
fi

if grep -h '"level":50' .infra/logs/cluster-*.log 2>/dev/null | grep -q .; then
  echo "cluster processes logged errors during the run:"; grep -h '"level":50' .infra/logs/cluster-*.log | tail -n 20; rc=1
fi

# Last, the cluster once more with every process exporting spans to an in-test OTLP receiver (on a database of its
# own): one trace for a push across the gateway, the services, Postgres, MinIO, the outbox and the GC and webhook
# consumers, a failed request's OCI code on its span, and the metrics pushes and pulls move. Prints `telemetry: ...`.
tools/cluster/cluster down >/dev/null 2>&1 || true
node --import tsx tools/telemetry/trace-distributed.check.ts || rc=1
exit "$rc"
