/**
 * Backup and restore of the embedded mode, end to end: `lading-admin backup` (a real process) takes a backup of a
 * live registry while several pushers keep pushing, `lading-admin restore` (a real process) restores it into a fresh
 * data directory, and a registry started on that directory serves every manifest its database holds, byte for
 * byte, with every blob. Damaged archives, a held data directory and a directory that is not empty are refused,
 * leaving nothing behind.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRegistryClient, RegistryClient } from '@lading/client';
import { parseConfig } from '@lading/config';
import { digestOf } from '@lading/oci';
import { BACKUP_ENTRIES, BackupSummary, EmbeddedRegistry, createEmbeddedRegistry, restoreBackup } from '@lading/embedded';
import { blobKey } from '@lading/storage';
import { createLogger } from '@lading/telemetry';
import { TestBlob, imageManifest, makeBlob } from '@lading/testing';
import { ADMIN, cli } from './lading-admin-testing';
import { rewriteSummary } from './test/backup-archive-edit';

const PUSHERS = 4;

interface Running {
  registry: EmbeddedRegistry;
  server: Server;
  url: string;
  client: RegistryClient;
  close(): Promise<void>;
}

async function startRegistry(dir: string): Promise<Running> {
  const registry = await createEmbeddedRegistry(
    parseConfig({ data: { dir }, auth: { enabled: true }, admin: ADMIN, log: { level: 'silent', access: false } }),
    createLogger({ service: 'test', level: 'silent' }),
  );
  const server = registry.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = createRegistryClient({ url, credentials: { username: ADMIN.user, password: ADMIN.password } });
  return {
    registry,
    server,
    url,
    client,
    async close() {
      await client.close();
      await new Promise((resolve) => server.close(resolve));
      await registry.close();
    },
  };
}

/** Every file under a directory (relative paths); [] for a missing one. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

const sha256 = (data: Buffer) => digestOf(data, 'sha256');

describe('lading-admin backup and restore (embedded mode)', () => {
  let work: string;
  let source: Running;
  let archive: string;
  let summary: BackupSummary;
  /** Everything the pushers pushed (manifests and blobs by digest), and the images acknowledged before the backup began. */
  const pushedManifests = new Map<string, Buffer>();
  const pushedBlobs = new Map<string, Buffer>();
  const beforeBackup: Array<{ repository: string; tag: string; digest: string }> = [];
  let pushesDuringBackup = 0;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'lading-backup-e2e-'));
    source = await startRegistry(path.join(work, 'source'));
    archive = path.join(work, 'registry.tar');

    // Every pusher pushes images into its repository; all of them share one base layer (one blob, several links).
    const base = makeBlob(48 * 1024);
    pushedBlobs.set(base.digest, base.data);
    let backupRunning = false;
    let stop = false;
    const pushOne = async (pusher: number, n: number) => {
      const repository = `team/app-${pusher}`;
      const config = makeBlob(JSON.stringify({ architecture: 'amd64', os: 'linux', pusher, n }));
      const layers: TestBlob[] = [base, makeBlob(1024 + ((pusher * 7919 + n * 104729) % 60_000))];
      const manifest = imageManifest(config, layers);
      const tag = `v${n}`;
      const answer = await source.client.pushImage(repository, tag, manifest, [config, ...layers]);
      expect(answer.status).toBe(201);
      for (const blob of [config, ...layers]) pushedBlobs.set(blob.digest, blob.data);
      pushedManifests.set(manifest.digest, manifest.body);
      return { repository, tag, digest: manifest.digest };
    };
    // One image with a sha512 layer (its archive entry is the longest path).
    const long = makeBlob(3000, 'sha512');
    const longConfig = makeBlob('{"architecture":"arm64","os":"linux"}');
    const longManifest = imageManifest(longConfig, [long]);
    expect((await source.client.pushImage('team/sha512', 'v1', longManifest, [longConfig, long])).status).toBe(201);
    for (const blob of [longConfig, long]) pushedBlobs.set(blob.digest, blob.data);
    pushedManifests.set(longManifest.digest, longManifest.body);
    beforeBackup.push({ repository: 'team/sha512', tag: 'v1', digest: longManifest.digest });
    const pushers = Array.from({ length: PUSHERS }, async (_, pusher) => {
      let n = 0;
      for (; n < 3; n++) beforeBackup.push(await pushOne(pusher, n));
      await waitFor(() => backupRunning);
      // Each pusher keeps pushing while the backup runs (and at least twice after it started).
      for (let during = 0; !stop || during < 2; during++, n++) {
        await pushOne(pusher, n);
        if (!stop) pushesDuringBackup++;
      }
    });
    const seeded = new Promise<void>((resolve) => {
      const check = () => (beforeBackup.length === PUSHERS * 3 + 1 ? resolve() : setTimeout(check, 20));
      check();
    });
    await seeded;
    backupRunning = true;
    const result = await cli(['--url', source.url, 'backup', '--out', archive, '--json']);
    stop = true;
    await Promise.all(pushers);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    summary = JSON.parse(result.stdout) as BackupSummary;
  }, 180_000);

  afterAll(async () => {
    await source?.close();
    await rm(work, { recursive: true, force: true });
  });

  /** Resolves once `ready()` holds (checked as the pushers' loops turn). */
  function waitFor(ready: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => (ready() ? resolve() : setTimeout(check, 10));
      check();
    });
  }

  it('restores into a fresh data directory a registry that serves every manifest byte for byte, with all its blobs', async () => {
    expect(pushesDuringBackup).toBeGreaterThan(0);
    expect(summary).toMatchObject({ format: 'lading-backup', formatVersion: 1, lading: { name: 'lading' } });
    expect(summary.tables.manifests).toBeGreaterThanOrEqual(beforeBackup.length);
    expect(summary.schema.migrations.length).toBeGreaterThan(0);

    const target = path.join(work, 'restored');
    const restore = await cli(['restore', '--from', archive, '--data-dir', target]);
    expect({ code: restore.code, stderr: restore.stderr }).toEqual({ code: 0, stderr: '' });
    expect(restore.stdout).toMatch(/restored .* into /);

    const restored = await startRegistry(target);
    try {
      const db = restored.registry.db;
      const manifests = (
        await db.query<{ repository: string; digest: string; payload: Buffer }>(
          `SELECT r.name AS repository, m.digest, m.payload FROM manifests m JOIN repositories r ON r.id = m.repository_id ORDER BY 1, 2`,
        )
      ).rows;
      expect(manifests.length).toBe(summary.tables.manifests);
      // Every image acknowledged before the backup began is there, under its tag.
      for (const image of beforeBackup) {
        const answer = await restored.client.getManifest(image.repository, image.tag);
        expect({ image, status: answer.status, digest: sha256(answer.body) }).toEqual({ image, status: 200, digest: image.digest });
      }
      // Every manifest the restored database holds pulls byte for byte as it was pushed, and so does each of its blobs.
      let blobsPulled = 0;
      for (const m of manifests) {
        const answer = await restored.client.getManifest(m.repository, m.digest);
        expect({ manifest: m.digest, status: answer.status }).toEqual({ manifest: m.digest, status: 200 });
        expect(answer.body.equals(pushedManifests.get(m.digest)!)).toBe(true);
        const doc = JSON.parse(answer.body.toString('utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
        for (const digest of [doc.config.digest, ...doc.layers.map((l) => l.digest)]) {
          const blob = await restored.client.getBlob(m.repository, digest);
          expect({ digest, status: blob.status, actual: digestOf(blob.body, digest.startsWith('sha512:') ? 'sha512' : 'sha256') }).toEqual({ digest, status: 200, actual: digest });
          expect(blob.body.equals(pushedBlobs.get(digest)!)).toBe(true);
          blobsPulled++;
        }
      }
      const references = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM manifest_blob_references`);
      expect(blobsPulled).toBe(references.rows[0].n);
      // Nothing the backup claims is missing: every blob row has its object, whole.
      const blobs = (await db.query<{ digest: string; size: number }>(`SELECT digest, size FROM blobs`)).rows;
      expect(blobs.length).toBe(summary.blobs.count);
      for (const blob of blobs) expect(await restored.registry.store.stat(blobKey(blob.digest))).toEqual({ size: Number(blob.size) });
      // The admin and the rest of the auth state came back too: the restored registry took the same credentials.
      expect((await db.query(`SELECT 1 FROM users WHERE name = $1 AND is_admin`, [ADMIN.user])).rows).toHaveLength(1);
    } finally {
      await restored.close();
    }

    // The directory holds a registry's data now: a second restore into it is refused.
    const again = await cli(['restore', '--from', archive, '--data-dir', target]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/is not empty/);
  }, 180_000);

  it('checks an archive whole with restore --check', async () => {
    const check = await cli(['restore', '--from', archive, '--check']);
    expect({ code: check.code, stderr: check.stderr }).toEqual({ code: 0, stderr: '' });
    expect(check.stdout).toContain(`${summary.blobs.count} blobs`);
  });

  it('refuses to restore into the data directory a running registry holds', async () => {
    const held = await cli(['restore', '--from', archive, '--data-dir', path.join(work, 'source')]);
    expect(held.code).toBe(1);
    expect(held.stderr).toMatch(/in use by another Lading process \(pid \d+\)/);
  });

  it('writes no file when the registry cannot complete the archive (an object damaged in its storage)', async () => {
    // One blob's object is overwritten in place with other bytes of its size: the registry notices while it copies.
    const { registry } = source;
    const [victim] = (await registry.db.query<{ digest: string; size: number }>(`SELECT digest, size FROM blobs ORDER BY size DESC LIMIT 1`)).rows;
    const file = path.join(work, 'source', 'blobs', blobKey(victim.digest));
    const original = await readFile(file);
    await writeFile(file, Buffer.alloc(original.length, 0x5a));
    try {
      const out = path.join(work, 'damaged', 'backup.tar');
      await mkdir(path.dirname(out));
      const result = await cli(['--url', source.url, 'backup', '--out', out]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/the backup broke off after \d+ of \d+ bytes .*nothing was written to/);
      expect(await readdir(path.dirname(out))).toEqual([]);
    } finally {
      await writeFile(file, original);
    }
  });

  describe('refuses a damaged or foreign archive and leaves nothing behind', () => {
    /** Restores `bytes` with the CLI (a real process): exit status 1, and nothing in the target. */
    async function refused(bytes: Buffer, name: string): Promise<string> {
      const file = path.join(work, `${name}.tar`);
      await writeFile(file, bytes);
      const target = path.join(work, `target-${name}`);
      const result = await cli(['restore', '--from', file, '--data-dir', target]);
      expect({ name, code: result.code, stdout: result.stdout.split('\n').filter((l) => !l.startsWith('restore: ')).join('') }).toEqual({ name, code: 1, stdout: '' });
      // Nothing was restored: no database, no blob, no staging left.
      expect(await filesUnder(target)).toEqual([]);
      return result.stderr;
    }

    /** The same in this process (what the CLI runs, without a process start per case): the refusal's message. */
    async function refusedHere(bytes: Buffer, name: string): Promise<string> {
      const target = path.join(work, `target-${name}`);
      const config = parseConfig({ data: { dir: target }, log: { level: 'silent', access: false } });
      const error = await restoreBackup(config, (async function* () {
        yield bytes;
      })()).then(
        () => null,
        (err: Error) => err,
      );
      expect({ name, error: error?.name }).toEqual({ name, error: 'BackupArchiveError' });
      expect(await filesUnder(target)).toEqual([]);
      return error!.message;
    }

    it('a flipped byte in a blob', async () => {
      const bytes = await readFile(archive);
      const [first] = bytes.toString('latin1').match(/lading-backup\/blobs\/sha256\/[a-f0-9]{64}/) ?? [];
      // The first byte of the first blob's data (the block after its header).
      const at = bytes.indexOf(Buffer.from(first!, 'latin1')) + 512;
      bytes[at] ^= 0xff;
      expect(await refused(bytes, 'flipped')).toMatch(/blob sha256:[a-f0-9]{64} does not match its sha256 checksum: the archive is corrupted/);
    });

    it('a flipped byte in the metadata', async () => {
      const bytes = await readFile(archive);
      const at = bytes.indexOf(Buffer.from(BACKUP_ENTRIES.metadata)) + 512 + 40;
      bytes[at] ^= 0x01;
      expect(await refusedHere(bytes, 'metadata')).toMatch(/the metadata does not match its sha256 checksum/);
    });

    it('a truncated archive', async () => {
      const bytes = await readFile(archive);
      expect(await refusedHere(bytes.subarray(0, Math.floor(bytes.length * 0.6)), 'truncated')).toMatch(/truncated/);
      // Cut exactly before the trailer: every blob is there, but the writer never finished.
      const trailerAt = bytes.indexOf(Buffer.from(BACKUP_ENTRIES.end));
      expect(await refusedHere(bytes.subarray(0, trailerAt), 'no-trailer')).toMatch(/truncated/);
    });

    it('another format version, or a schema newer than this Lading', async () => {
      const bytes = await readFile(archive);
      expect(await refusedHere(await rewriteSummary(bytes, (s) => ({ ...s, formatVersion: 2 })), 'version')).toMatch(
        /backup format version 2, written by lading .*; this Lading reads version 1 only/,
      );
      const future = await rewriteSummary(bytes, (s) => ({ ...s, schema: { version: '9999_future.sql', migrations: [...s.schema.migrations, '9999_future.sql'] } }));
      expect(await refusedHere(future, 'future')).toMatch(/schema is newer than this Lading .*9999_future\.sql/);
    });

    it('a file that is not a backup', async () => {
      expect(await refused(Buffer.from('not a tar file at all\n'.repeat(100)), 'garbage')).toMatch(/not a complete backup archive/);
    });
  });
});
