# One image for every Lading process: the source tree, the production dependencies and each service's bundle
# (`npm run build`: dist/<name>/main.cjs, plain JavaScript that node runs without a TypeScript loader, and the web
# console's files in dist/console/, which the gateway serves under /ui/: `console.assets`); the command picks the
# process:
#   node --wasm-tiering-budget=... --max-semi-space-size=4 ... dist/embedded/main.cjs   the embedded registry (the
#       default CMD, the same command and flags as `npm start`)
#   node dist/<name>/main.cjs     one distributed service: gateway, blob, manifest, auth, gc, webhooks
# The operator CLIs are bundled too and on the PATH, for `docker compose exec <service> ...` or `docker run`:
#   lading-admin ...              the admin API's CLI (users, robots, tokens, namespaces, grants, keys, webhooks)
#   garbage-collect ...           collect now or --dry-run, on the container's configured data or --registry URL
#   lading-migrate                the schema step of an upgrade: applies the database migrations and exits
#                                 (dist/migrate/main.cjs; compose's `migrate` one-shot, a Helm hook Job)
# Configuration comes from LADING_* variables (libs/config/src/schema.ts); docker-compose.yml sets them.

# Stage 1: only the package manifests, so that `npm ci` below is cached until a dependency changes.
FROM node:24-bookworm-slim AS manifests
WORKDIR /src
COPY . .
RUN mkdir /manifests \
 && find . -name package.json -not -path '*/node_modules/*' -exec cp --parents {} /manifests \; \
 && cp package-lock.json /manifests/

FROM node:24-bookworm-slim
# LADING_DATA_DIR: where the embedded mode keeps its data when run as plain `docker run lading:local` (the app
# directory is not writable by the node user). The distributed services keep nothing on disk.
ENV NODE_ENV=production LADING_DATA_DIR=/data
WORKDIR /app
# The workspace manifests first: npm ci links libs/* and services/* into node_modules/@lading/*.
COPY --from=manifests /manifests/ ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY . .
# The bundles find their migrations and schemas next to the sources, which stay in the image beside dist/. With no
# names, the build makes every bundle: each service's, each operator CLI's and the console's (tools/build/bundle.ts;
# Vite, a production dependency of services/console for this step, builds the console into /app/dist/console).
RUN npm run -s build
# Each operator CLI under its own name: a two-line script that runs its bundle on plain node.
RUN printf '#!/bin/sh\nexec node /app/dist/lading-admin/main.cjs "$@"\n' >/usr/local/bin/lading-admin \
 && printf '#!/bin/sh\nexec node /app/dist/garbage-collect/main.cjs "$@"\n' >/usr/local/bin/garbage-collect \
 && printf '#!/bin/sh\nexec node /app/dist/migrate/main.cjs "$@"\n' >/usr/local/bin/lading-migrate \
 && chmod 755 /usr/local/bin/lading-admin /usr/local/bin/garbage-collect /usr/local/bin/lading-migrate
# /data is the embedded mode's LADING_DATA_DIR; a named volume mounted there inherits the node user's ownership.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 5000
# No ENTRYPOINT of our own: the node image's entrypoint execs the command, so compose's `command:` picks the process.
CMD ["node", "--wasm-tiering-budget=2000000000", "--max-semi-space-size=4", "--incremental-marking-soft-trigger=75", "--incremental-marking-hard-trigger=90", "dist/embedded/main.cjs"]
