/**
 * Bad input gets a clear OCI error, and nothing is stored: the corpus of bad-input-cases.ts run against the real
 * embedded registry (PGlite and filesystem under a temporary data directory). Each case: snapshot everything the
 * registry stores (every row of every table, every file of blob storage), send the request, check the status, the
 * OCI error code and the headers, that nothing leaked (no 5xx, no stack), and that the snapshot is unchanged.
 * Around the whole corpus, the snapshot also covers the database's own files in the data directory.
 *
 * Run: NODE_OPTIONS=--experimental-vm-modules npx jest services/embedded/src/bad-input.spec.ts (PGlite needs the flag).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LadingConfigInput, parseConfig } from '@lading/config';
import { MediaTypes } from '@lading/oci';
import { snapshotState } from '@lading/testing';
import { createLogger } from '@lading/telemetry';
import { EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';
import { BAD_INPUT_CASES, BadInputCase, CaseContext, Category, paddedManifest } from '../test/bad-input-cases';
import { WireResponse, send } from '../test/bad-input-client';
import { LockedSeed, Seed, seedLocked, seedMain } from '../test/bad-input-seed';

/** Small, so that clamping of a huge `n` is observable with a handful of tags and repositories. */
const MAX_PAGE_SIZE = 2;

interface Running {
  registry: EmbeddedRegistry;
  server: http.Server;
  port: number;
  dataDir: string;
  /** The filesystem blob store's root (the default, under the data directory). */
  storageRoot: string;
}

const sha256Of = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

type Snapshot = Awaited<ReturnType<typeof snapshotState>>;

async function start(registry: LadingConfigInput['registry']): Promise<Running> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'lading-bad-input-'));
  const config = parseConfig({ data: { dir: dataDir }, registry, log: { level: 'silent', access: false } });
  const instance = await createEmbeddedRegistry(config, createLogger({ service: 'bad-input', level: 'silent' }));
  const server = http.createServer(instance.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { registry: instance, server, port: (server.address() as AddressInfo).port, dataDir, storageRoot: path.join(dataDir, 'blobs') };
}

async function stop(running: Running | undefined): Promise<void> {
  if (!running) return;
  running.server.closeAllConnections();
  await new Promise<void>((resolve) => running.server.close(() => resolve()));
  await running.registry.close();
  await rm(running.dataDir, { recursive: true, force: true });
}

/** Everything in a response that would betray internals: stack frames, exception names, file paths. */
const LEAKS = [/\n\s+at /, /\bError:/, /node_modules/, /\.ts:\d+/, /TypeError|ReferenceError|SyntaxError/];

function assertNoLeak(res: WireResponse): void {
  const everything = `${res.text}\n${JSON.stringify(res.headers)}`;
  for (const leak of LEAKS) expect({ leak: String(leak), found: leak.test(everything) }).toEqual({ leak: String(leak), found: false });
}

function assertEnvelope(res: WireResponse, c: BadInputCase): void {
  if (c.code === undefined) return;
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = JSON.parse(res.text) as { errors?: Array<{ code: unknown; message: unknown }> };
  expect(Array.isArray(body.errors) && body.errors.length > 0).toBe(true);
  const [first] = body.errors!;
  expect(first.code).toBe(c.code);
  expect(typeof first.message).toBe('string');
  if (c.message) expect(first.message).toMatch(c.message);
}

describe('bad input: a clear OCI error, and nothing stored', () => {
  let main: Running | undefined;
  let locked: Running | undefined;
  let ctx: CaseContext;
  let wholeDir: [Snapshot, Snapshot];
  const ran = new Map<Category, number>();
  const began = Date.now();

  beforeAll(async () => {
    [main, locked] = await Promise.all([start({ maxPageSize: MAX_PAGE_SIZE }), start({ deleteEnabled: false })]);
    const [seed, lockedSeed]: [Seed, LockedSeed] = await Promise.all([seedMain(main.port, MAX_PAGE_SIZE), seedLocked(locked.port)]);
    ctx = { seed, locked: lockedSeed };
    // The relay publishes the seed's last events a moment after they commit (it gathers kicks): publish them now,
    // so that marking them published does not count as a change made by the first case.
    await Promise.all([main.registry.flushEvents(), locked.registry.flushEvents()]);
    wholeDir = [await snapshotState(main.registry.db, main.dataDir), await snapshotState(locked.registry.db, locked.dataDir)];
  });

  afterAll(async () => {
    await Promise.all([stop(main), stop(locked)]);
    const byCategory = new Map<Category, number>();
    for (const c of BAD_INPUT_CASES) byCategory.set(c.category, (byCategory.get(c.category) ?? 0) + 1);
    const lines = [...byCategory.entries()].map(([category, n]) => `  ${category.padEnd(18)} ${String(n).padStart(3)} (${ran.get(category) ?? 0} passed)`);
    const passed = [...ran.values()].reduce((a, b) => a + b, 0);
    console.log(`bad-input corpus: ${BAD_INPUT_CASES.length} cases, ${passed} passed, ${((Date.now() - began) / 1000).toFixed(1)} s\n${lines.join('\n')}`);
  });

  it(`has at least 150 cases, each with a distinct name and a distinct request`, () => {
    expect(BAD_INPUT_CASES.length).toBeGreaterThanOrEqual(150);
    expect(new Set(BAD_INPUT_CASES.map((c) => c.name)).size).toBe(BAD_INPUT_CASES.length);
    const fingerprints = BAD_INPUT_CASES.map((c) => {
      const r = c.request(ctx, c.setup ? `<set up for ${c.name}>` : '');
      const body = r.body === undefined ? '' : Buffer.from(r.body).toString('base64');
      return JSON.stringify([c.target, r.method, r.path, r.headers ?? {}, r.framing ?? null, body]);
    });
    expect(new Set(fingerprints).size).toBe(BAD_INPUT_CASES.length);
    // Every refusal with a body names its OCI code; only HEADs (no body) and clamped 200s go without.
    const uncoded = BAD_INPUT_CASES.filter((c) => c.code === undefined && c.status >= 400 && c.request(ctx, '').method !== 'HEAD');
    expect(uncoded.map((c) => c.name)).toEqual([]);
  });

  it.each(BAD_INPUT_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const target = c.target === 'main' ? main! : locked!;
    let prepared = '';
    if (c.setup) {
      // The whole-directory check spans the corpus: verify it up to here, run the setup, and restart it from there.
      const which = c.target === 'main' ? 0 : 1;
      expect(await snapshotState(target.registry.db, target.dataDir)).toEqual(wholeDir[which]);
      prepared = await c.setup(target.port, ctx);
      await target.registry.flushEvents();
      wholeDir[which] = await snapshotState(target.registry.db, target.dataDir);
    }
    const request = c.request(ctx, prepared);
    const before = await snapshotState(target.registry.db, target.storageRoot);

    const res = await send(target.port, request);

    expect(res.status).toBeLessThan(500);
    // Status and the start of the body together, so that a wrong status shows what the registry said.
    expect(`${res.status} ${res.text.slice(0, 300)}`).toMatch(new RegExp(`^${c.status} `));
    assertNoLeak(res);
    if (request.method === 'HEAD') expect(res.body.length).toBe(0);
    else assertEnvelope(res, c);
    for (const [name, value] of Object.entries(c.headers?.(ctx) ?? {})) {
      if (typeof value === 'string') expect({ [name]: res.headers[name] }).toEqual({ [name]: value });
      else expect(res.headers[name]).toMatch(value);
    }
    c.check?.(res, ctx);

    const after = await snapshotState(target.registry.db, target.storageRoot);
    expect(after).toEqual(before);
    ran.set(c.category, (ran.get(c.category) ?? 0) + 1);
  });

  it('leaves the whole data directory, database files included, as the seed (and the cases\' setup steps) left it', async () => {
    expect(await snapshotState(main!.registry.db, main!.dataDir)).toEqual(wholeDir[0]);
    expect(await snapshotState(locked!.registry.db, locked!.dataDir)).toEqual(wholeDir[1]);
  });

  // The controls: inputs next to the refused ones that must be accepted (they change state, so they run last).
  it('still completes the seeded upload sessions with the right bytes and digests after the corpus', async () => {
    const { seed } = ctx;
    const rest = await send(main!.port, {
      method: 'PATCH',
      path: seed.session.path,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '1000-1999' },
      body: seed.sessionBlob.data.subarray(1000),
    });
    expect(rest.headers.range).toBe('0-1999');
    expect((await send(main!.port, { method: 'PUT', path: `${seed.session.path}?digest=${seed.sessionBlob.digest}` })).status).toBe(201);
    const whole = await send(main!.port, { method: 'PUT', path: `${seed.fresh.path}?digest=${seed.foreign.digest}`, body: seed.foreign.data });
    expect(whole.status).toBe(201);
    const get = await send(main!.port, { method: 'GET', path: `/v2/${seed.repo}/blobs/${seed.sessionBlob.digest}` });
    expect(get.body.equals(seed.sessionBlob.data)).toBe(true);
  });

  it('accepts a 3.9 MB manifest (the cap is 4 MiB) and serves it back byte for byte', async () => {
    const { seed } = ctx;
    const body = paddedManifest(seed, 3_900_000);
    const put = await send(main!.port, { method: 'PUT', path: `/v2/${seed.repo}/manifests/big`, headers: { 'Content-Type': MediaTypes.ociManifest }, body });
    expect(put.status).toBe(201);
    const get = await send(main!.port, { method: 'GET', path: `/v2/${seed.repo}/manifests/big` });
    expect(get.status).toBe(200);
    expect(get.body.equals(body)).toBe(true);
  });

  it('accepts a manifest of exactly 4 MiB, sent chunked (the cap is inclusive)', async () => {
    const { seed } = ctx;
    const body = paddedManifest(seed, 4 * 1024 * 1024);
    const put = await send(main!.port, { method: 'PUT', path: `/v2/${seed.repo}/manifests/${sha256Of(body)}`, headers: { 'Content-Type': MediaTypes.ociManifest }, body, framing: { kind: 'chunked' } });
    expect({ status: put.status, body: put.text }).toEqual({ status: 201, body: '' });
  });
});
