/**
 * libs/events' tables, beside its queries: the migrations in `libs/events/migrations` (the outbox relay's slices,
 * parked rows and indexes). The outbox table itself was created by libs/metadata's 0001_registry.sql, which runs
 * before these in the one ordered sequence (see `migrate`); a process passes this set with the others.
 */
import { MigrationSet, migrationSetBeside } from '@lading/metadata';

/** The migration set of libs/events. */
export const EVENTS_MIGRATIONS: MigrationSet = migrationSetBeside('events', __dirname);
