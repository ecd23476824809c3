/** Starts the auth service as its own process (distributed mode): token endpoint, JWKS, admin API. */
import { telemetry } from './telemetry';
import { hashPassword } from '@lading/access';
import { migrate, openDatabase } from '@lading/metadata';
import { runProcess, wireTelemetry } from '@lading/runtime';
import { bootstrapAdmin, createAuthService } from './auth-service';

runProcess('auth', async (config, logger) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const db = await openDatabase(config, (err) => logger.warn({ err }, 'a pooled database connection failed while idle'));
  await migrate(db);
  await bootstrapAdmin(db, config, logger, hashPassword);
  const { app } = createAuthService({ db, config, logger });
  return {
    app: wired.measured(app),
    async close() {
      await db.close();
      await wired.shutdown();
    },
  };
});
