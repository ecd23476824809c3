/**
 * The distributed mode's backup procedure (docs/operations/backup.md), against the real Postgres and MinIO of
 * tools/infra: pg_dump first, with the bucket versioned; then the collector deletes content the dump still names and
 * more is pushed; then pg_restore into a new database, blob-objects (a real process) finds the objects the collector
 * deleted and, with --undelete, brings them back from behind their delete markers; and a registry on the restored
 * database and the bucket serves every manifest the dump holds, byte for byte, with every blob.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createRegistryClient, RegistryClient } from '@lading/client';
import { parseConfig } from '@lading/config';
import { EmbeddedRegistry, createEmbeddedRegistry } from '@lading/embedded';
import { digestOf } from '@lading/oci';
import { blobKey, createMinioClient } from '@lading/storage';
import { createLogger } from '@lading/telemetry';
import { REPO_ROOT, TestManifest, ThrowawayDatabase, createThrowawayDatabase, imageManifest, infraSettings, makeBlob } from '@lading/testing';

const run = promisify(execFile);
const ADMIN = { user: 'root', password: 'root-password-9' };

/** A PostgreSQL client program: Debian's newest server's own, else the one on PATH. */
function pgProgram(name: string): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', name))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  return versions.length ? path.join(root, versions[0], 'bin', name) : name;
}

describe('distributed backup: pg_dump, a versioned bucket, pg_restore and blob-objects --undelete', () => {
  const infra = infraSettings();
  const bucket = `lading-backup-${randomBytes(4).toString('hex')}`;
  const minio = createMinioClient(infra.storage);
  const databases: ThrowawayDatabase[] = [];
  let work: string;

  /** An embedded-wiring registry on a Postgres database and the test's bucket (the distributed parts, in one process). */
  async function startRegistry(databaseUrl: string): Promise<{ registry: EmbeddedRegistry; client: RegistryClient; url: string; close(): Promise<void> }> {
    const registry = await createEmbeddedRegistry(
      parseConfig({
        data: { dir: work },
        database: { driver: 'postgres', url: databaseUrl },
        storage: { driver: 's3', ...infra.storage, bucket },
        gc: { enabled: false },
        admin: ADMIN,
        log: { level: 'silent', access: false },
      }),
      createLogger({ service: 'test', level: 'silent' }),
    );
    const server: Server = registry.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = createRegistryClient({ url });
    return {
      registry,
      client,
      url,
      async close() {
        await client.close();
        await new Promise((resolve) => server.close(resolve));
        await registry.close();
      },
    };
  }

  async function pushImage(client: RegistryClient, repository: string, tag: string): Promise<TestManifest> {
    const config = makeBlob(JSON.stringify({ os: 'linux', repository, tag, n: randomBytes(4).toString('hex') }));
    const layer = makeBlob(2000 + randomBytes(2).readUInt16BE(0));
    const manifest = imageManifest(config, [layer]);
    expect((await client.pushImage(repository, tag, manifest, [config, layer])).status).toBe(201);
    return manifest;
  }

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'lading-backup-distributed-'));
    await minio.makeBucket(bucket, infra.storage.region);
    await minio.setBucketVersioning(bucket, { Status: 'Enabled' });
  });

  afterAll(async () => {
    for (const db of databases) await db.drop().catch(() => undefined);
    // Every version and delete marker goes, then the bucket.
    const versions: Array<{ name: string; versionId: string }> = [];
    for await (const item of minio.listObjects(bucket, '', true, { IncludeVersion: true }) as AsyncIterable<{ name?: string; versionId?: string }>) {
      if (item.name) versions.push({ name: item.name, versionId: item.versionId ?? 'null' });
    }
    for (let i = 0; i < versions.length; i += 500) await minio.removeObjects(bucket, versions.slice(i, i + 500));
    await minio.removeBucket(bucket);
    await rm(work, { recursive: true, force: true });
  });

  it('restores every manifest the dump holds, bringing back what the collector deleted after the dump', async () => {
    const source = await createThrowawayDatabase('backup_source');
    databases.push(source);
    const reg = await startRegistry(source.url);
    const dumped: Array<{ repository: string; tag: string; manifest: TestManifest }> = [];
    let doomed: TestManifest[] = [];
    try {
      for (let i = 0; i < 3; i++) dumped.push({ repository: 'team/kept', tag: `v${i}`, manifest: await pushImage(reg.client, 'team/kept', `v${i}`) });
      for (let i = 0; i < 2; i++) dumped.push({ repository: 'team/doomed', tag: `v${i}`, manifest: await pushImage(reg.client, 'team/doomed', `v${i}`) });
      doomed = dumped.filter((d) => d.repository === 'team/doomed').map((d) => d.manifest);
      // The online backup route is the embedded mode's (PGlite): on Postgres it points at this procedure instead.
      const online = await fetch(`${reg.url}/admin/v1/backup`, { headers: { Authorization: `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}` } });
      expect({ status: online.status, body: await online.text() }).toEqual({ status: 400, body: expect.stringContaining('back it up with pg_dump and bucket versioning') });

      // 1. The backup: pg_dump, one snapshot, while the registry runs.
      const dump = path.join(work, 'lading.dump');
      await run(pgProgram('pg_dump'), ['--format=custom', `--file=${dump}`, `--dbname=${source.url}`]);

      // 2. After the dump, the collector deletes the doomed images' content (delete markers in the versioned bucket) ...
      for (const m of doomed) expect((await reg.client.deleteManifest('team/doomed', m.digest)).status).toBe(202);
      for (let round = 0; round < 3; round++) {
        await reg.registry.db.query(`UPDATE gc_manifest_review_queue SET review_after = now() - interval '1 second'`);
        await reg.registry.db.query(`UPDATE gc_blob_review_queue SET review_after = now() - interval '1 second'`);
        await reg.registry.db.query(`UPDATE repository_blobs SET created_at = now() - interval '2 days'`);
        await reg.registry.gc.runUntilIdle();
      }
      const layer = (m: TestManifest) => (m.doc.layers as Array<{ digest: string }>)[0].digest;
      for (const m of doomed) expect(await reg.registry.store.stat(blobKey(layer(m)))).toBeNull();
      // ... and pushes go on: content the dump does not know (left in the bucket, harmless).
      await pushImage(reg.client, 'team/later', 'v0');
    } finally {
      await reg.close();
    }

    // 3. The restore: pg_restore into an empty database.
    const target = await createThrowawayDatabase('backup_target');
    databases.push(target);
    await run(pgProgram('pg_restore'), ['--no-owner', '--exit-on-error', `--dbname=${target.url}`, path.join(work, 'lading.dump')]);

    // 4. blob-objects: the objects the collector deleted after the dump are missing, until --undelete brings them back.
    const env = {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LADING_'))),
      NODE_OPTIONS: '',
      LADING_MODE: 'distributed',
      LADING_DATABASE_URL: target.url,
      LADING_KAFKA_BROKERS: infra.kafkaBrokers.join(','),
      LADING_STORAGE_ENDPOINT: infra.storage.endpoint,
      LADING_STORAGE_ACCESSKEY: infra.storage.accessKey,
      LADING_STORAGE_SECRETKEY: infra.storage.secretKey,
      LADING_STORAGE_BUCKET: bucket,
      LADING_STORAGE_REGION: infra.storage.region,
    };
    const tool = (args: string[]) =>
      run(process.execPath, ['--import', 'tsx', 'tools/backup/blob-objects.ts', ...args], { cwd: REPO_ROOT, env }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (err: { code?: number; stdout?: string; stderr?: string }) => ({ code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' }),
      );
    const before = await tool(['--json']);
    expect({ code: before.code, stderr: before.stderr }).toEqual({ code: 1, stderr: '' });
    const missing = (JSON.parse(before.stdout) as { missing: Array<{ digest: string }> }).missing.map((m) => m.digest);
    // Both doomed images' config and layer (four blobs the dump names) were deleted after the dump.
    expect(missing).toHaveLength(4);
    const undelete = await tool(['--undelete']);
    expect({ code: undelete.code, stderr: undelete.stderr }).toEqual({ code: 0, stderr: '' });
    expect(undelete.stdout).toMatch(/blob-objects: (\d+) of \1 blobs have their object, 4 of them brought back from behind delete markers/);

    // 5. A registry on the restored database and the bucket serves every manifest the dump holds, with its blobs.
    const restored = await startRegistry(target.url);
    try {
      const rows = (await restored.registry.db.query<{ repository: string; digest: string }>(
        `SELECT r.name AS repository, m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id ORDER BY 1, 2`,
      )).rows;
      expect(rows.map((r) => `${r.repository}@${r.digest}`).sort()).toEqual(dumped.map((d) => `${d.repository}@${d.manifest.digest}`).sort());
      for (const { repository, tag, manifest } of dumped) {
        const answer = await restored.client.getManifest(repository, tag);
        expect({ tag, status: answer.status, same: answer.body.equals(manifest.body) }).toEqual({ tag, status: 200, same: true });
        const doc = manifest.doc as { config: { digest: string }; layers: Array<{ digest: string }> };
        for (const digest of [doc.config.digest, ...doc.layers.map((l) => l.digest)]) {
          const blob = await restored.client.getBlob(repository, digest);
          expect({ digest, status: blob.status, actual: digestOf(blob.body) }).toEqual({ digest, status: 200, actual: digest });
        }
      }
    } finally {
      await restored.close();
    }
  }, 120_000);
});
