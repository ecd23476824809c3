/** Starts the manifest service as its own process (distributed mode). */
import { telemetry } from './telemetry';
import { durationMs } from '@lading/config';
import { createServiceClient } from '@lading/http';
import { openProcessParts, openProxyRules, runProcess, wireTelemetry } from '@lading/runtime';
import { createBlobServiceFetch } from './blob-service-fetch';
import { createManifestService } from './manifest-service';
import { wireManifestPullThrough } from './manifest-pull-through-wiring';

/** Longest wait for a blob replica to fetch a referenced blob whole from an upstream before it answers. */
const BLOB_FETCH_TIMEOUT_MS = 15 * 60_000;

runProcess('manifest', 'the manifest service of the distributed mode: manifests, tags, referrers and the catalog.', async (config, logger) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const parts = await openProcessParts(config, logger, { metrics: wired.metrics });
  const deps = parts.serviceDeps('manifest');
  // Pull-through: manifest misses are fetched here; the blobs they reference are fetched by the blob service.
  const proxies = openProxyRules(config);
  if (proxies && config.upstreams.blob.length === 0) {
    throw new Error('proxies need upstreams.blob (LADING_UPSTREAMS_BLOB) on the manifest service: it has the blob service fetch the blobs of the manifests it fetches');
  }
  const headersTimeoutMs = Math.max(BLOB_FETCH_TIMEOUT_MS, durationMs(config.upstreams.timeout));
  const blobs = proxies && createServiceClient({ service: 'blob', urls: config.upstreams.blob, headersTimeoutMs });
  const pullThrough = proxies && blobs && wireManifestPullThrough(deps, proxies, createBlobServiceFetch({ blobs, principalSecret: config.upstreams.secret }));
  const app = createManifestService({ ...deps, pullThrough: pullThrough?.pullThrough, pulls: pullThrough?.pulls });
  return {
    app: wired.measured(app),
    async close() {
      await pullThrough?.close();
      await blobs?.close();
      await proxies?.close();
      await parts.close();
      await wired.shutdown();
    },
  };
});
