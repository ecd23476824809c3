/** Starts the gateway as its own process (distributed mode): the route table in front of the services' replicas. */
import { durationMs } from '@lading/config';
import { runProcess } from '@lading/runtime';
import { createGateway } from './gateway';
import { createUpstreamProxy } from './upstream-proxy';

runProcess('gateway', async (config, logger) => {
  const headersTimeoutMs = durationMs(config.upstreams.timeout);
  const blob = createUpstreamProxy({ service: 'blob', urls: config.upstreams.blob, headersTimeoutMs, logger });
  const manifest = createUpstreamProxy({ service: 'manifest', urls: config.upstreams.manifest, headersTimeoutMs, logger });
  const app = createGateway({
    dispatch: { blob: blob.handler, manifest: manifest.handler },
    logger,
    accessLog: config.log.access,
    ready: async () => {
      await Promise.all([blob.ready(), manifest.ready()]);
    },
  });
  return { app, close: async () => Promise.all([blob.close(), manifest.close()]).then(() => undefined) };
});
