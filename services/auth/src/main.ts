/** Starts the auth service as its own process (distributed mode): token endpoint, JWKS, admin API. */
import { hashPassword } from '@lading/access';
import { migrate, openDatabase } from '@lading/metadata';
import { runProcess } from '@lading/runtime';
import { bootstrapAdmin, createAuthService } from './auth-service';

runProcess('auth', async (config, logger) => {
  const db = await openDatabase(config, (err) => logger.warn({ err }, 'a pooled database connection failed while idle'));
  await migrate(db);
  await bootstrapAdmin(db, config, logger, hashPassword);
  const { app } = createAuthService({ db, config, logger });
  return { app, close: () => db.close() };
});
