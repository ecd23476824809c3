# One image for every Lading process. The services run their TypeScript through tsx, so the image is the source
# tree plus the production dependencies; the command picks the process:
#   node --import tsx services/embedded/src/main.ts   the embedded registry (the default CMD)
#   node --import tsx services/<name>/src/main.ts     one distributed service: gateway, blob, manifest
# Configuration comes from LADING_* variables (libs/config/src/schema.ts); docker-compose.yml sets them.

# Stage 1: only the package manifests, so that `npm ci` below is cached until a dependency changes.
FROM node:20-bookworm-slim AS manifests
WORKDIR /src
COPY . .
RUN mkdir /manifests \
 && find . -name package.json -not -path '*/node_modules/*' -exec cp --parents {} /manifests \; \
 && cp package-lock.json /manifests/

FROM node:20-bookworm-slim
# LADING_DATA_DIR: where the embedded mode keeps its data when run as plain `docker run lading:local` (the app
# directory is not writable by the node user). The distributed services keep nothing on disk.
ENV NODE_ENV=production LADING_DATA_DIR=/data
WORKDIR /app
# The workspace manifests first: npm ci links libs/* and services/* into node_modules/@lading/*.
COPY --from=manifests /manifests/ ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY . .
# /data is the embedded mode's LADING_DATA_DIR; a named volume mounted there inherits the node user's ownership.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 5000
# No ENTRYPOINT of our own: the node image's entrypoint execs the command, so compose's `command:` picks the process.
CMD ["node", "--import", "tsx", "services/embedded/src/main.ts"]
