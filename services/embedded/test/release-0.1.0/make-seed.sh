#!/usr/bin/env bash
# Writes seed.sql and fixture.json: the rows that Lading 0.1.0 itself wrote, for the upgrade spec (upgrade-from-0.1.0.spec.ts).
#
# Lading 0.1.0 is commit 51729c4 (the last commit of 2026-11-23, the date CHANGELOG.md gives 0.1.0): its schema is
# migrations 0001..0005, which migrations/ holds byte for byte. This script runs that release's own embedded
# registry, on a throwaway database of the tools/infra PostgreSQL (embedded mode, postgres driver, token auth on),
# drives it over HTTP the way clients and an admin did (pushes, tags, an index, a referrer, a Docker manifest, a
# delete, an open upload, users, a robot, a personal access token, namespaces, grants, refresh tokens, a failed
# login, a webhook subscription), stops it and dumps the rows as INSERTs. It is not part of any test run: the output
# is committed, so that the spec always seeds the same rows. Run it again only to widen the fixture:
#
#   old=$(mktemp -d) && git archive 51729c4 | tar -x -C "$old"
#   # node_modules: the current checkout's packages, with @lading/* pointing at the old sources
#   mkdir "$old/node_modules" "$old/node_modules/@lading"
#   for e in node_modules/* node_modules/.bin; do [ "${e##*/}" = @lading ] || ln -s "$PWD/$e" "$old/node_modules/"; done
#   for d in "$old"/libs/* "$old"/services/*; do ln -s "$d" "$old/node_modules/$(node -p "require('$d/package.json').name")"; done
#   services/embedded/test/release-0.1.0/make-seed.sh "$old"
#
# The passwords below are the fixture's, known to the spec; the signing key in the dump is the one that release
# generated for this throwaway database and signs nothing else.
set -euo pipefail

old=${1:?usage: make-seed.sh <checkout of Lading 0.1.0 with node_modules>}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
set -a
# shellcheck disable=SC1091
. "$repo/.infra/env"
set +a
server=$LADING_DATABASE_URL
dbname=lading_seed_0_1_0
dburl="${server%/*}/$dbname"
psql -q "$server" -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" -c "CREATE DATABASE $dbname"

data=$(mktemp -d)
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
url="http://127.0.0.1:$port"
(
  cd "$old"
  LADING_DATABASE_DRIVER=postgres LADING_DATABASE_URL="$dburl" LADING_DATA_DIR="$data" LADING_HTTP_ADDR="127.0.0.1:$port" \
    LADING_AUTH_ENABLED=true LADING_ADMIN_USER=admin LADING_ADMIN_PASSWORD='admin-password-0.1.0' LADING_LOG_LEVEL=warn \
    LADING_WEBHOOKS_ALLOWLIST=127.0.0.1 exec node --import tsx services/embedded/src/main.ts
) >"$data/registry.log" 2>&1 &
registry=$!
trap 'kill $registry 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 120); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/" || true)" = 401 ] && break
  sleep 0.5
done

admin=(-u 'admin:admin-password-0.1.0')
token() { # token <user:password> <scope>
  curl -sf -u "$1" "$url/token?service=lading&scope=$2" | jq -r .token
}
json() { # json <method> <path> <body>
  curl -sf "${admin[@]}" -X "$1" -H 'Content-Type: application/json' --data "$3" "$url/admin/v1$2"
}
digest() { printf 'sha256:%s' "$(printf '%s' "$1" | sha256sum | cut -d' ' -f1)"; }
push_blob() { # push_blob <bearer> <repo> <content>
  curl -sf -o /dev/null -H "Authorization: Bearer $1" -H 'Content-Type: application/octet-stream' --data-binary "$3" \
    -X POST "$url/v2/$2/blobs/uploads/?digest=$(digest "$3")"
}
put_manifest() { # put_manifest <bearer> <repo> <reference> <media type> <body>
  curl -sf -o /dev/null -H "Authorization: Bearer $1" -H "Content-Type: $4" --data-binary "$5" -X PUT "$url/v2/$2/manifests/$3"
}
size() { printf '%s' "$1" | wc -c; }

# Principals: a user with a personal access token, a robot, a private and a public namespace, grants.
json POST /users '{"name":"alice","password":"alice-password-0.1.0"}' >/dev/null
json POST /users '{"name":"bob","password":"bob-password-0.1.0","admin":true}' >/dev/null
pat=$(json POST /users/alice/tokens '{"name":"laptop"}' | jq -r .token)
robot=$(json POST /robots '{"name":"ci","expiresIn":"720h"}' | jq -r .secret)
json POST /namespaces '{"prefix":"team"}' >/dev/null
json POST /namespaces '{"prefix":"pub","public":true}' >/dev/null
json POST /grants '{"prefix":"team","principal":"user:alice","role":"push"}' >/dev/null
json POST /grants '{"prefix":"team","principal":"robot:ci","role":"pull"}' >/dev/null
json POST /webhooks '{"name":"scanner","url":"http://127.0.0.1:9/lading-hook","namespace":"team","format":"cloudevents"}' >/dev/null

# team/app: an image (config + layer) tagged v1 and latest, an index of it tagged multi, a referrer (an SBOM).
t=$(token 'alice:alice-password-0.1.0' 'repository:team/app:pull,push')
config='{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":{"release":"0.1.0"}}}'
layer='the layer of team/app, pushed by Lading 0.1.0'
push_blob "$t" team/app "$config"
push_blob "$t" team/app "$layer"
image=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}],"annotations":{"org.opencontainers.image.title":"app"}}' \
  "$(digest "$config")" "$(size "$config")" "$(digest "$layer")" "$(size "$layer")")
put_manifest "$t" team/app v1 application/vnd.oci.image.manifest.v1+json "$image"
put_manifest "$t" team/app latest application/vnd.oci.image.manifest.v1+json "$image"
index=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d,"platform":{"architecture":"amd64","os":"linux"}}]}' \
  "$(digest "$image")" "$(size "$image")")
put_manifest "$t" team/app multi application/vnd.oci.image.index.v1+json "$index"
sbom='{"spdxVersion":"SPDX-2.3","name":"team/app"}'
empty='{}'
push_blob "$t" team/app "$sbom"
push_blob "$t" team/app "$empty"
referrer=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/spdx+json","digest":"%s","size":%d}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d}}' \
  "$(digest "$empty")" "$(digest "$sbom")" "$(size "$sbom")" "$(digest "$image")" "$(size "$image")")
put_manifest "$t" team/app "$(digest "$referrer")" application/vnd.oci.image.manifest.v1+json "$referrer"
# A tag and its manifest deleted: the garbage collector's review queues get rows.
gone='a layer that was deleted again'
push_blob "$t" team/app "$gone"
goneimage=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
  "$(digest "$config")" "$(size "$config")" "$(digest "$gone")" "$(size "$gone")")
put_manifest "$t" team/app old application/vnd.oci.image.manifest.v1+json "$goneimage"
td=$(token 'admin:admin-password-0.1.0' 'repository:team/app:pull,push,delete')
curl -sf -o /dev/null -H "Authorization: Bearer $td" -X DELETE "$url/v2/team/app/manifests/$(digest "$goneimage")"
# An upload left open after its first chunk.
location=$(curl -sf -D - -o /dev/null -H "Authorization: Bearer $t" -X POST "$url/v2/team/app/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
case $location in http*) ;; *) location="$url$location" ;; esac
curl -sf -o /dev/null -H "Authorization: Bearer $t" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-9' --data-binary '0123456789' -X PATCH "$location"

# pub/tool: a Docker schema 2 image, pushed by the admin.
ta=$(token 'admin:admin-password-0.1.0' 'repository:pub/tool:pull,push')
dconfig='{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
dlayer='the layer of pub/tool'
push_blob "$ta" pub/tool "$dconfig"
push_blob "$ta" pub/tool "$dlayer"
docker=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"%s","size":%d}]}' \
  "$(digest "$dconfig")" "$(size "$dconfig")" "$(digest "$dlayer")" "$(size "$dlayer")")
put_manifest "$ta" pub/tool 1.0 application/vnd.docker.distribution.manifest.v2+json "$docker"

# Refresh tokens as 0.1.0 issued them (Docker's identity token, the OAuth2 password grant), and a failed login.
identity=$(curl -sf -u 'alice:alice-password-0.1.0' "$url/token?service=lading&offline_token=true&scope=repository:team/app:pull" | jq -er .refresh_token)
oauth=$(curl -sf -X POST --data 'grant_type=password&username=alice&password=alice-password-0.1.0&service=lading&client_id=seed&access_type=offline&scope=repository:team/app:pull' "$url/token" | jq -er .refresh_token)
curl -s -o /dev/null -u 'alice:wrong' "$url/token?service=lading"

# Let the relay publish (in-process) and the webhook worker try once, then stop the registry cleanly.
sleep 3
kill -TERM $registry
wait $registry || true

[ "$(psql -qAt "$dburl" -c "SELECT string_agg(name, ',' ORDER BY name) FROM schema_migrations")" = \
  0001_registry.sql,0002_auth.sql,0003_gc.sql,0004_events.sql,0005_webhooks.sql ] || { echo 'not the 0.1.0 schema' >&2; exit 1; }
{
  echo '-- The rows Lading 0.1.0 (commit 51729c4) wrote through its own HTTP API on the schema of migrations/ (0001..0005):'
  echo '-- written by make-seed.sh (read it for what was done): pg_dump --data-only --column-inserts, without the session'
  echo '-- settings (SET, set_config, psql meta-commands), so that it runs as one script on any connection.'
  pg_dump --data-only --column-inserts --no-owner --no-privileges --exclude-table=schema_migrations "$dburl" |
    grep -vE '^(SET |SELECT pg_catalog\.set_config|\\)'
} >"$here/seed.sql"
psql -q "$server" -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)"
# What the spec checks the upgraded registry against: the secrets handed out, and what was pushed.
jq -n --arg pat "$pat" --arg robot "$robot" --arg identity "$identity" --arg oauth "$oauth" \
  --arg config "$config" --arg layer "$layer" --arg image "$image" --arg index "$index" --arg referrer "$referrer" \
  --arg goneimage "$goneimage" --arg docker "$docker" --arg dlayer "$dlayer" '{
    passwords: {admin: "admin-password-0.1.0", alice: "alice-password-0.1.0", bob: "bob-password-0.1.0"},
    aliceToken: $pat, robotSecret: $robot, refreshTokens: {identity: $identity, passwordGrant: $oauth},
    teamApp: {config: $config, layer: $layer, image: $image, index: $index, referrer: $referrer, deleted: $goneimage},
    pubTool: {docker: $docker, layer: $dlayer}
  }' >"$here/fixture.json"
echo "wrote $here/seed.sql ($(grep -c '^INSERT' "$here/seed.sql") rows)"
