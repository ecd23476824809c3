/** Starts the auth service as its own process (distributed mode): token endpoint, JWKS, admin API. */
import { telemetry } from './telemetry';
import { startSecretCipher } from '@lading/access';
import { openMigratedDatabase, runProcess, wireTelemetry } from '@lading/runtime';
import { bootstrapAdmin, createAuthService, passwordPoolFromConfig } from './auth-service';
import { sealSigningKeys } from './signing-keys';

runProcess('auth', 'the auth service of the distributed mode: the token endpoint, the JWKS and the admin API.', async (config, logger) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const db = await openMigratedDatabase(config, logger);
  const passwords = passwordPoolFromConfig(config);
  await bootstrapAdmin(db, config, logger, passwords.hash);
  const secrets = startSecretCipher(config, logger);
  const { app, keys } = createAuthService({ db, config, logger, passwords, secrets });
  await sealSigningKeys(keys, logger);
  return {
    app: wired.measured(app),
    async close() {
      await passwords.close();
      await db.close();
      await wired.shutdown();
    },
  };
});
