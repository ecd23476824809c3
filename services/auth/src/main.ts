/** Starts the auth service as its own process (distributed mode): token endpoint, JWKS, admin API. */
import { telemetry } from './telemetry';
import { startSecretCipher } from '@lading/access';
import { openMigratedDatabase, runProcess, wireTelemetry } from '@lading/runtime';
import { bootstrapAdmin, createAuthService, passwordPoolFromConfig } from './auth-service';
import { sealSigningKeys } from './signing-keys';
import { sealStoredProxyPasswords } from '@lading/upstream';

runProcess('auth', 'the auth service of the distributed mode: the token endpoint, the JWKS and the admin API.', async (config, logger) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const db = await openMigratedDatabase(config, logger);
  const passwords = passwordPoolFromConfig(config);
  await bootstrapAdmin(db, config, logger, passwords.hash);
  const secrets = startSecretCipher(config, logger);
  const { app, keys } = createAuthService({ db, config, logger, passwords, secrets });
  await sealSigningKeys(keys, logger);
  // The admin API stores upstream passwords of proxy rules: those stored plain or under a previous key are sealed now.
  const sealed = await sealStoredProxyPasswords(db, secrets);
  if (sealed > 0) logger.info({ sealed, keyId: secrets.keyId }, 'upstream passwords of stored proxy rules sealed under secrets.key');
  return {
    app: wired.measured(app),
    async close() {
      await passwords.close();
      await db.close();
      await wired.shutdown();
    },
  };
});
