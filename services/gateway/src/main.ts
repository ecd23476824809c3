/** Starts the gateway as its own process (distributed mode): the route table in front of the services' replicas. */
import { telemetry } from './telemetry';
import { keysFromJwks } from '@lading/access';
import { durationMs } from '@lading/config';
import { createServiceClient } from '@lading/http';
import { ladingVersion, runProcess, wireTelemetry } from '@lading/runtime';
import { createProxyRules } from '@lading/upstream';
import { authorizationFromConfig } from './authorization';
import { createGateway } from './gateway';
import { consoleSiteFromConfig } from './console-site';
import { createSessionTokens, exchangeOverHttp } from './session-tokens';
import { withConfiguredMirror } from './mirror-namespace';
import { rateLimiterFromConfig } from './rate-limiter';
import { createUpstreamProxy } from './upstream-proxy';
import { createManifestReads } from './manifest-reads';
import { askRepositoryExists } from './repository-existence';

runProcess('gateway', 'the gateway of the distributed mode: authorization, rate limits and the route table in front of the services.', async (config, logger) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const headersTimeoutMs = durationMs(config.upstreams.timeout);
  const principalSecret = config.upstreams.secret;
  if (config.auth.enabled && !principalSecret) logger.warn('upstreams.secret is not set: the services cannot tell who made a change, and events name no actor');
  const blob = createUpstreamProxy({ service: 'blob', urls: config.upstreams.blob, headersTimeoutMs, logger, principalSecret, fetchObjects: true });
  const manifest = createUpstreamProxy({ service: 'manifest', urls: config.upstreams.manifest, headersTimeoutMs, logger, principalSecret });
  const auth = createUpstreamProxy({ service: 'auth', urls: config.upstreams.auth, headersTimeoutMs, logger });
  const jwksUrl = config.auth.jwksUrl ?? `${config.upstreams.auth[0]?.replace(/\/$/, '')}/.well-known/jwks.json`;
  const authorize = authorizationFromConfig(config, async () => {
    const res = await fetch(jwksUrl, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`JWKS answered ${res.status}`);
    return keysFromJwks((await res.json()) as { keys: unknown[] });
  });
  const gateway = createGateway({
    authorize,
    // Concurrent reads of one manifest share one read of the service; manifest bytes are kept here, by digest.
    dispatch: { blob: blob.handler, manifest: createManifestReads({ upstream: manifest, maxBytes: config.limits.manifestCacheBytes }), auth: auth.handler },
    logger,
    accessLog: config.log.access,
    limiter: rateLimiterFromConfig(config),
    trustedProxies: config.http.trustedProxies,
    version: ladingVersion(),
    console: consoleSiteFromConfig(config),
    sessions: createSessionTokens(exchangeOverHttp(config.upstreams.auth, config.auth.service, headersTimeoutMs)),
    ready: async () => {
      await Promise.all([blob.ready(), manifest.ready(), auth.ready()]);
    },
  });
  // `mirror`: un-prefixed pulls answered from a proxy namespace, local names first (asked of the manifest service).
  // The gateway keeps no database, so it knows the configuration's proxy namespaces only: a name under a rule stored
  // through the admin API is left alone when it holds content (it is then local), and the mirror namespace is
  // trusted to name a rule (the manifest service answers NAME_UNKNOWN-like errors while it names none).
  const configured = createProxyRules(config.proxies);
  const manifests = createServiceClient({ service: 'manifest', urls: config.upstreams.manifest, headersTimeoutMs });
  const app = withConfiguredMirror(gateway, config, {
    isActive: () => true,
    isProxied: (repository) => configured.namespaceOf(repository) !== null,
    isLocal: askRepositoryExists(manifests),
  });
  return {
    app: wired.measured(app),
    async close() {
      await Promise.all([blob.close(), manifest.close(), auth.close(), manifests.close(), configured.close()]);
      await wired.shutdown();
    },
  };
});
