/**
 * Checks for tests of domain write operations (a service's writes called without HTTP): what the outbox holds, the
 * typed refusal an operation threw, and a database whose transactions fail at a chosen statement, to show that a
 * change and its events commit together or not at all.
 */
import type { LadingEvent } from '@lading/events';
import type { Database } from '@lading/metadata';
import { OciError } from '@lading/oci';

/** The events the outbox holds for a repository, in sequence order. */
export async function outboxEvents(db: Database, repository: string): Promise<LadingEvent[]> {
  const r = await db.query<{ event: LadingEvent | string }>(`SELECT event FROM outbox WHERE repository = $1 ORDER BY sequence`, [repository]);
  return r.rows.map((row) => (typeof row.event === 'string' ? (JSON.parse(row.event) as LadingEvent) : row.event));
}

/** The OciError an operation rejected with; fails the test when it resolved or threw anything else. */
export async function ociRefusal(work: Promise<unknown>): Promise<OciError> {
  const outcome = await work.then(
    () => new Error('the operation was expected to refuse, and succeeded'),
    (err: unknown) => err,
  );
  if (!(outcome instanceof OciError)) throw outcome;
  return outcome;
}

/** The database, except that inside a transaction every statement matching `pattern` fails. */
export function failingInTransactions(db: Database, pattern: RegExp): Database {
  return {
    driverName: db.driverName,
    query: (sql, params) => db.query(sql, params),
    exec: (sql) => db.exec(sql),
    close: () => db.close(),
    transaction: (work) =>
      db.transaction((tx) => work({ query: (sql, params) => (pattern.test(sql) ? Promise.reject(new Error(`injected failure: ${pattern}`)) : tx.query(sql, params)) })),
  };
}
