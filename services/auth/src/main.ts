/** Starts the auth service as its own process (distributed mode): token endpoint, JWKS, admin API. */
import { telemetry } from './telemetry';
import { startSecretCipher } from '@lading/access';
import { openMigratedDatabase, runProcess, wireTelemetry } from '@lading/runtime';
import { bootstrapAdmin, createAuthService, passwordPoolFromConfig } from './auth-service';
import { sealSigningKeys } from './signing-keys';
import { sealStoredProxyPasswords } from '@lading/upstream';
import { durationMs } from '@lading/config';
import { createServiceClient } from '@lading/http';
import { createGcForwardingRouter } from './gc-forwarding';
import { createRepositoryForwardingRouter } from './repository-forwarding';

runProcess('auth', 'the auth service of the distributed mode: the token endpoint, the JWKS and the admin API.', async (config, logger) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const db = await openMigratedDatabase(config, logger);
  const passwords = passwordPoolFromConfig(config);
  await bootstrapAdmin(db, config, logger, passwords.hash);
  const secrets = startSecretCipher(config, logger);
  // Repository deletions are the manifest service's: the admin API forwards them there on the admin's behalf.
  const headersTimeoutMs = durationMs(config.upstreams.timeout);
  const manifests = config.upstreams.manifest.length > 0 ? createServiceClient({ service: 'manifest', urls: config.upstreams.manifest, headersTimeoutMs }) : null;
  const repositories = createRepositoryForwardingRouter({ manifests, secret: config.upstreams.secret, logger });
  // So are the collector's routes the gc service's: its status, a dry run, a collection now.
  const collectors = config.upstreams.gc.length > 0 ? createServiceClient({ service: 'gc', urls: config.upstreams.gc, headersTimeoutMs }) : null;
  const gc = createGcForwardingRouter({ collectors, secret: config.upstreams.secret, logger });
  const { app, keys } = createAuthService({ db, config, logger, passwords, secrets, adminRouters: { '/repositories': repositories, '/gc': gc } });
  await sealSigningKeys(keys, logger);
  // The admin API stores upstream passwords of proxy rules: those stored plain or under a previous key are sealed now.
  const sealed = await sealStoredProxyPasswords(db, secrets);
  if (sealed > 0) logger.info({ sealed, keyId: secrets.keyId }, 'upstream passwords of stored proxy rules sealed under secrets.key');
  return {
    app: wired.measured(app),
    async close() {
      await passwords.close();
      await manifests?.close();
      await collectors?.close();
      await db.close();
      await wired.shutdown();
    },
  };
});
