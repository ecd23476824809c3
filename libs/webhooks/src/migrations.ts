/** libs/webhooks' tables, beside its queries (webhook-store.ts): the migrations in `libs/webhooks/migrations`. */
import { MigrationSet, migrationSetBeside } from '@lading/metadata';

/** The migration set of libs/webhooks. */
export const WEBHOOKS_MIGRATIONS: MigrationSet = migrationSetBeside('webhooks', __dirname);
