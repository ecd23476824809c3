/**
 * A search corpus at the scale of issue 22's figures (100,000 repositories, 1,000,000 tags), seeded in a handful of
 * set-based statements straight into the metadata tables (what pushes would leave there, without the blobs or the
 * events, which search never reads), and a measurement of search latency over it. The corpus's names are built
 * from a vocabulary of image-like words, so that trigram matches are as selective as real names make them.
 *
 * The seeding is for measurement, on a database of its own: it is not a push and writes no outbox rows.
 */
import { performance } from 'node:perf_hooks';
import { type SearchViewer, type SqlExecutor, searchRepositories } from '@lading/metadata';

/** Words repository names, tags and descriptions are made of. */
export const CORPUS_WORDS = [
  'postgres', 'redis', 'nginx', 'node', 'python', 'golang', 'alpine', 'debian', 'ubuntu', 'kafka', 'zookeeper', 'mysql',
  'mariadb', 'mongo', 'elastic', 'kibana', 'grafana', 'prometheus', 'exporter', 'operator', 'controller', 'gateway',
  'billing', 'ledger', 'payments', 'search', 'catalog', 'frontend', 'backend', 'worker', 'scheduler', 'api', 'web',
  'auth', 'identity', 'proxy', 'cache', 'queue', 'stream', 'batch', 'etl', 'ml', 'trainer', 'inference', 'model',
  'runner', 'builder', 'base', 'tools', 'debug', 'agent', 'collector', 'sidecar', 'migrator', 'backup', 'restore',
] as const;

/** How large a corpus to seed. */
export interface CorpusSize {
  repositories: number;
  /** Tags in all, spread evenly over the repositories (each points at its repository's one manifest). */
  tags: number;
  /** Namespaces the repositories are spread over; every other one is public. */
  namespaces: number;
}

/** The figures of issue 22. */
export const ISSUE_22_SIZE: CorpusSize = { repositories: 100_000, tags: 1_000_000, namespaces: 200 };

/**
 * Seeds the corpus into an empty, migrated database: namespaces `ns<k>` (even k public), repositories
 * `ns<k>/<word>-<word>-<i>`, one manifest each with its image metadata (a description of words, a platform, a label),
 * and tags `v<major>.<minor>` or `<word>-<n>`. Resolves when the statements have run; ANALYZE included, so that the
 * planner sees the corpus.
 */
export async function seedSearchCorpus(db: SqlExecutor, size: CorpusSize): Promise<void> {
  const words = [...CORPUS_WORDS];
  const w = (expr: string) => `($1::text[])[(1 + ((${expr})::bigint % array_length($1::text[], 1)))::int]`;
  await db.query(`INSERT INTO namespaces (prefix, public) SELECT 'ns' || k, k % 2 = 0 FROM generate_series(0, $1::int - 1) k`, [size.namespaces]);
  await db.query(
    `INSERT INTO repositories (name)
     SELECT 'ns' || (i % $2::int) || '/' || ${w('i * 7919')} || '-' || ${w('i * 104729 + 3')} || '-' || i FROM generate_series(1::bigint, $3::bigint) i`,
    [words, size.namespaces, size.repositories],
  );
  await db.query(
    `INSERT INTO manifests (repository_id, digest, media_type, artifact_type, size, payload)
     SELECT id, 'sha256:' || lpad(to_hex(id), 64, '0'), 'application/vnd.oci.image.manifest.v1+json',
            'application/vnd.oci.image.config.v1+json', 2, '\\x7b7d'::bytea
       FROM repositories`,
  );
  await db.query(
    `INSERT INTO image_metadata (repository_id, manifest_digest, media_type, artifact_type, title, description, source, labels, platforms)
     SELECT repository_id, digest, media_type, artifact_type, ${w('repository_id * 31')},
            'The ' || ${w('repository_id * 17')} || ' ' || ${w('repository_id * 13 + 5')} || ' image for ' || ${w('repository_id * 11 + 7')},
            'https://example.com/' || ${w('repository_id * 19')},
            jsonb_build_object('tier', ${w('repository_id')}),
            ARRAY[CASE WHEN repository_id % 3 = 0 THEN 'linux/arm64' ELSE 'linux/amd64' END]
       FROM manifests`,
    [words],
  );
  const perRepository = Math.max(1, Math.round(size.tags / Math.max(1, size.repositories)));
  await db.query(
    `INSERT INTO tags (repository_id, name, manifest_digest)
     SELECT m.repository_id,
            CASE WHEN n % 2 = 0 THEN 'v' || (n / 10) || '.' || (n % 10) ELSE ${w('m.repository_id + n')} || '-' || n END,
            m.digest
       FROM manifests m, generate_series(1, $2::int) n`,
    [words, perRepository],
  );
  for (const table of ['namespaces', 'repositories', 'manifests', 'image_metadata', 'tags', 'search_documents']) await db.query(`ANALYZE ${table}`);
}

/** Latency percentiles of one kind of search, in milliseconds. */
export interface SearchTiming {
  label: string;
  runs: number;
  p50: number;
  p95: number;
  max: number;
  /** The same for each term alone (each term's `runs` samples): which terms set the viewer's p95. */
  terms: Record<string, { p50: number; p95: number; max: number }>;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** p50, p95 and max of `samples`, in milliseconds to two decimals. */
function percentiles(samples: number[]): { p50: number; p95: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (ms: number) => Math.round(ms * 100) / 100;
  return { p50: round(percentile(sorted, 50)), p95: round(percentile(sorted, 95)), max: round(sorted[sorted.length - 1]) };
}

/**
 * Runs each term `runs` times as each viewer (a page of 25, the way both APIs ask), after one untimed pass, and
 * reports the latency percentiles per viewer, over all terms and per term: what `npm run bench` compares with the
 * 50 ms p95 of issue 22.
 */
export async function measureSearch(db: SqlExecutor, options: { terms: string[]; runs: number; viewers: Record<string, SearchViewer> }): Promise<SearchTiming[]> {
  const timings: SearchTiming[] = [];
  for (const [label, viewer] of Object.entries(options.viewers)) {
    const samples: number[] = [];
    const perTerm = new Map<string, number[]>(options.terms.map((text) => [text, []]));
    // One untimed pass first: the first search of a term plans its statement and reads its pages into the cache.
    for (const text of options.terms) await searchRepositories(db, { text, viewer, limit: 25, offset: 0 });
    for (let run = 0; run < options.runs; run++) {
      for (const text of options.terms) {
        const started = performance.now();
        await searchRepositories(db, { text, viewer, limit: 25, offset: 0 });
        const ms = performance.now() - started;
        samples.push(ms);
        perTerm.get(text)?.push(ms);
      }
    }
    timings.push({ label, runs: samples.length, ...percentiles(samples), terms: Object.fromEntries([...perTerm].map(([text, s]) => [text, percentiles(s)])) });
  }
  return timings;
}
