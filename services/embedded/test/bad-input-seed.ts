/**
 * The valid content the bad-input corpus runs against, pushed through the API before the first case: blobs, an
 * image manifest under two tags, an index, content in a second repository, and open upload sessions (one with a
 * first chunk written, one fresh, one in another repository). "Missing reference" and "wrong digest" cases are
 * only meaningful next to content that does exist.
 */
import { TestBlob, TestManifest, imageIndex, imageManifest, makeBlob } from '@lading/testing';
import { WireRequest, WireResponse, send } from './bad-input-client';

/** An open upload session. */
export interface SeedSession {
  id: string;
  /** The session's URL path, as the registry's Location header gave it. */
  path: string;
  /** Bytes already written. */
  offset: number;
}

/** What the main registry holds before the corpus runs. */
export interface Seed {
  /** The repository with the content: `seed/app`. */
  repo: string;
  /** A second repository holding a blob `repo` does not have, and an upload session. */
  other: string;
  /** A third repository (so that the catalog has more entries than a page). */
  third: string;
  config: TestBlob;
  /** A 1000-byte layer (Range cases are relative to its size). */
  layer: TestBlob;
  /** A zero-length blob. */
  empty: TestBlob;
  /** A blob linked into `other` only. */
  foreign: TestBlob;
  /** The blob of `session`: its first 1000 bytes are written. */
  sessionBlob: TestBlob;
  image: TestManifest;
  index: TestManifest;
  /** The tags of `repo`, sorted. */
  tags: string[];
  /** A session of `repo` at offset 1000. */
  session: SeedSession;
  /** A session of `repo` with nothing written. */
  fresh: SeedSession;
  /** A session of `other`. */
  otherSession: SeedSession;
  /** The main registry's `registry.maxPageSize`. */
  maxPageSize: number;
}

/** What the registry with deletes disabled holds. */
export interface LockedSeed {
  repo: string;
  layer: TestBlob;
  image: TestManifest;
  tag: string;
}

async function expectStatus(port: number, req: WireRequest, status: number): Promise<WireResponse> {
  const res = await send(port, req);
  if (res.status !== status) throw new Error(`seeding ${req.method} ${req.path}: expected ${status}, got ${res.status} ${res.text}`);
  return res;
}

async function pushBlob(port: number, repo: string, blob: TestBlob): Promise<void> {
  await expectStatus(port, { method: 'POST', path: `/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, headers: { 'Content-Type': 'application/octet-stream' }, body: blob.data }, 201);
}

async function pushManifest(port: number, repo: string, reference: string, manifest: TestManifest): Promise<void> {
  await expectStatus(port, { method: 'PUT', path: `/v2/${repo}/manifests/${reference}`, headers: { 'Content-Type': manifest.mediaType }, body: manifest.body }, 201);
}

async function openSession(port: number, repo: string): Promise<SeedSession> {
  const res = await expectStatus(port, { method: 'POST', path: `/v2/${repo}/blobs/uploads/` }, 202);
  const path = String(res.headers.location);
  return { id: path.slice(path.lastIndexOf('/') + 1), path, offset: 0 };
}

/** Pushes the main registry's content. */
export async function seedMain(port: number, maxPageSize: number): Promise<Seed> {
  const repo = 'seed/app';
  const other = 'seed/other';
  const third = 'seed/third';
  const config = makeBlob(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const layer = makeBlob(1000);
  const empty = makeBlob(Buffer.alloc(0));
  const foreign = makeBlob(300);
  const sessionBlob = makeBlob(2000);
  for (const blob of [config, layer, empty]) await pushBlob(port, repo, blob);
  await pushBlob(port, other, foreign);
  await pushBlob(port, third, makeBlob(10));

  const image = imageManifest(config, [layer]);
  const index = imageIndex([image]);
  await pushManifest(port, repo, 'v1', image);
  await pushManifest(port, repo, 'v2', image);
  await pushManifest(port, repo, 'multi', index);

  const session = await openSession(port, repo);
  await expectStatus(
    port,
    { method: 'PATCH', path: session.path, headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-999' }, body: sessionBlob.data.subarray(0, 1000) },
    202,
  );
  session.offset = 1000;
  const fresh = await openSession(port, repo);
  const otherSession = await openSession(port, other);
  return { repo, other, third, config, layer, empty, foreign, sessionBlob, image, index, tags: ['multi', 'v1', 'v2'], session, fresh, otherSession, maxPageSize };
}

/** Pushes the content of the registry with deletes disabled: deletes of things that exist must still be refused. */
export async function seedLocked(port: number): Promise<LockedSeed> {
  const repo = 'keep/app';
  const config = makeBlob('{"os":"linux"}');
  const layer = makeBlob(64);
  await pushBlob(port, repo, config);
  await pushBlob(port, repo, layer);
  const image = imageManifest(config, [layer]);
  await pushManifest(port, repo, 'v1', image);
  return { repo, layer, image, tag: 'v1' };
}
