/**
 * blob-objects: the last step of restoring a distributed registry (docs/operations/backup.md). It checks that every
 * blob row of the database (`database.url`) has its object in the bucket (`storage.*`), and with --undelete brings
 * back the objects that the collector deleted after the database dump was taken: in a versioned bucket such an
 * object's bytes are still there, hidden behind a delete marker, and removing its delete markers makes it current
 * again.
 *
 *   npm run backup:blobs -- [--undelete] [--json]
 *
 * Configuration: the registry's own (LADING_CONFIG, LADING_* variables). Exit status: 0 every blob has its object
 * (after --undelete brought some back), 1 some have none (they are named), 2 bad usage or configuration.
 */
import { parseArgs } from 'node:util';
import type { LadingConfig } from '@lading/config';
import type { SqlExecutor } from '@lading/metadata';
import type { BlobStore } from '@lading/storage';

/** The versions of a bucket's objects, as far as bringing one back needs them. */
export interface ObjectVersions {
  /**
   * Removes the delete markers of `key` when a version of it is left (the object is current again: resolves with
   * true); false when none is.
   */
  undelete(key: string): Promise<boolean>;
}

/** What a check found. */
export interface BlobObjectsReport {
  blobs: number;
  present: number;
  /** Brought back from behind delete markers (--undelete). */
  undeleted: string[];
  /** Blobs whose object is missing (or of another size), with why. */
  missing: Array<{ digest: string; problem: string }>;
}

/** Objects checked at a time. */
const CONCURRENCY = 16;
const PAGE = 1000;

/**
 * Checks every blob row's object; with `versions`, brings back the ones behind delete markers. `blobKey` maps a digest
 * to its key (the storage lib's).
 */
export async function checkBlobObjects(
  deps: { db: SqlExecutor; store: BlobStore; blobKey: (digest: string) => string; versions?: ObjectVersions },
): Promise<BlobObjectsReport> {
  const report: BlobObjectsReport = { blobs: 0, present: 0, undeleted: [], missing: [] };
  let after = '';
  for (;;) {
    const page = (
      await deps.db.query<{ digest: string; size: number }>(`SELECT digest, size FROM blobs WHERE digest > $1 ORDER BY digest COLLATE "C" LIMIT $2`, [after, PAGE])
    ).rows;
    if (page.length === 0) break;
    after = page[page.length - 1].digest;
    report.blobs += page.length;
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < page.length) {
          const { digest, size } = page[next++];
          const key = deps.blobKey(digest);
          let found = await deps.store.stat(key);
          if (!found && deps.versions && (await deps.versions.undelete(key))) {
            found = await deps.store.stat(key);
            if (found) report.undeleted.push(digest);
          }
          if (!found) report.missing.push({ digest, problem: deps.versions ? 'no version of its object is left' : 'no object (try --undelete)' });
          else if (found.size !== Number(size)) report.missing.push({ digest, problem: `its object is ${found.size} bytes, not ${size}` });
          else report.present++;
        }
      }),
    );
  }
  report.undeleted.sort();
  report.missing.sort((a, b) => (a.digest < b.digest ? -1 : 1));
  return report;
}

/** Object versions of the configured S3 bucket, through the MinIO client. */
export async function s3ObjectVersions(config: LadingConfig): Promise<ObjectVersions> {
  const { createMinioClient } = await import('@lading/storage');
  const client = createMinioClient({
    endpoint: config.storage.endpoint as string,
    accessKey: config.storage.accessKey as string,
    secretKey: config.storage.secretKey as string,
    region: config.storage.region,
  });
  const bucket = config.storage.bucket;
  return {
    async undelete(key) {
      // The key's versions and delete markers (the client lists them apart, not interleaved by age). A blob's object
      // is immutable, so any version holds its bytes: removing every marker makes the newest version current.
      const markers: string[] = [];
      let versions = 0;
      const listing = client.listObjects(bucket, key, false, { IncludeVersion: true }) as AsyncIterable<{ name?: string; versionId?: string; isDeleteMarker?: boolean }>;
      for await (const item of listing) {
        if (item.name !== key || !item.versionId) continue;
        if (item.isDeleteMarker) markers.push(item.versionId);
        else versions++;
      }
      if (versions === 0) return false;
      for (const versionId of markers) await client.removeObject(bucket, key, { versionId });
      return true;
    },
  };
}

const USAGE = `usage: blob-objects [--undelete] [--json]

Checks that every blob row of the registry's database has its object in its bucket (the last step of restoring a
distributed registry from pg_dump and a versioned bucket; see docs/operations/backup.md).

  --undelete   bring back objects hidden by delete markers (deleted by the collector after the dump was taken)
  --json       print the report as JSON
  --help       show this help

Configuration: the registry's own (LADING_CONFIG, LADING_DATABASE_URL, LADING_STORAGE_*).
Exit status: 0 every blob has its object, 1 some have none, 2 bad usage or configuration.
`;

async function main(): Promise<number> {
  let options;
  try {
    options = parseArgs({ options: { undelete: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true }).values;
  } catch (err) {
    process.stderr.write(`blob-objects: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [{ loadConfigOrExit }, { openDatabase }, { blobKey, openBlobStore }] = await Promise.all([import('@lading/runtime'), import('@lading/metadata'), import('@lading/storage')]);
  const config = loadConfigOrExit();
  if (config.database.driver !== 'postgres' || config.storage.driver !== 's3') {
    process.stderr.write('blob-objects: checks a registry on PostgreSQL and S3 (LADING_MODE=distributed, or database.driver and storage.driver); an embedded backup is checked with lading-admin restore --check\n');
    return 2;
  }
  const db = await openDatabase(config, () => undefined);
  try {
    const store = await openBlobStore(config);
    const report = await checkBlobObjects({ db, store, blobKey, versions: options.undelete ? await s3ObjectVersions(config) : undefined });
    if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      const back = report.undeleted.length ? `, ${report.undeleted.length} of them brought back from behind delete markers` : '';
      process.stdout.write(`blob-objects: ${report.present} of ${report.blobs} blobs have their object${back}\n`);
      for (const m of report.missing) process.stdout.write(`missing: ${m.digest}: ${m.problem}\n`);
    }
    return report.missing.length === 0 ? 0 : 1;
  } finally {
    await db.close();
  }
}

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`blob-objects: ${(err as Error)?.stack ?? err}\n`);
      process.exitCode = 1;
    },
  );
}
