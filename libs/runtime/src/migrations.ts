/**
 * The whole schema of a Lading process: every lib's migration set, in one list that every process's wiring passes to
 * `migrate` (openProcessParts, the auth service's main, the tools that open a database). Every process migrates the
 * whole schema, so whichever starts first on an empty database creates every table; the order of the sets does not
 * matter (their files run in the order of their global numbers), only that each set is here.
 */
import { EVENTS_MIGRATIONS } from '@lading/events';
import { METADATA_MIGRATIONS, MigrationSet } from '@lading/metadata';
import { WEBHOOKS_MIGRATIONS } from '@lading/webhooks';

/** Every migration set of the registry. */
export const REGISTRY_MIGRATIONS: readonly MigrationSet[] = [METADATA_MIGRATIONS, EVENTS_MIGRATIONS, WEBHOOKS_MIGRATIONS];
