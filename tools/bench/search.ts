/**
 * Search latency at scale (issue 22: p95 under 50 ms with 100,000 repositories and 1,000,000 tags): seeds the corpus
 * of search-corpus.ts into a database of its own (PGlite in memory, or a throwaway database on the PostgreSQL of
 * .infra/env), then times searches as an admin-like viewer (no access filter) and as anonymous (public namespaces).
 *
 *   node --import tsx tools/bench/search.ts [--driver pglite|postgres] [--repositories N] [--tags N] [--runs N] [--keep]
 *
 * --keep leaves the PostgreSQL database (`lading_searchbench`, dropped first if it exists) for EXPLAIN ANALYZE.
 * Prints one JSON document: the sizes, the seeding time, the load average at the start and the end, and the latency
 * percentiles per viewer (over all terms, and per term).
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { type Database, applyMigrations, createPgDatabase, createPgliteDatabase } from '@lading/metadata';
import { REGISTRY_MIGRATIONS } from '@lading/runtime';
import { createThrowawayDatabase } from '@lading/testing';
import { ISSUE_22_SIZE, measureSearch, seedSearchCorpus } from './search-corpus';

const TERMS = ['postgres', 'pstgres', 'exporter', 'billing-ledger', 'grafana', 'v1.2', 'image for', 'zzzz-nothing'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      driver: { type: 'string', default: 'postgres' },
      repositories: { type: 'string', default: String(ISSUE_22_SIZE.repositories) },
      tags: { type: 'string', default: String(ISSUE_22_SIZE.tags) },
      runs: { type: 'string', default: '20' },
      keep: { type: 'boolean', default: false },
    },
  });
  const size = { repositories: Number(values.repositories), tags: Number(values.tags), namespaces: ISSUE_22_SIZE.namespaces };
  let db: Database;
  let drop: () => Promise<void> = async () => undefined;
  if (values.driver === 'pglite') {
    db = await createPgliteDatabase();
  } else {
    const fresh = await createThrowawayDatabase('searchbench', values.keep ? { name: 'lading_searchbench' } : {});
    db = await createPgDatabase({ url: fresh.url, poolSize: 2, statementTimeoutMs: 600_000, connectTimeoutMs: 5000 });
    if (!values.keep) drop = fresh.drop;
  }
  try {
    await applyMigrations(db, REGISTRY_MIGRATIONS);
    const loadAtStart = loadavg()[0];
    const started = performance.now();
    await seedSearchCorpus(db, size);
    const seedMs = Math.round(performance.now() - started);
    const timings = await measureSearch(db, {
      terms: TERMS,
      runs: Number(values.runs),
      viewers: { everyone: { kind: 'everyone' }, anonymous: { kind: 'principal', type: null, name: null } },
    });
    // The 1-minute load average before seeding and after the searches: the box may be shared.
    const load = { start: Math.round(loadAtStart * 100) / 100, end: Math.round(loadavg()[0] * 100) / 100 };
    process.stdout.write(`${JSON.stringify({ driver: values.driver, size, seedMs, load, terms: TERMS, timings }, null, 2)}\n`);
  } finally {
    await db.close();
    await drop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
