/**
 * The collector's soak, on real Postgres and MinIO: while pushers re-push images over shared layers, retaggers
 * move tags, deleters delete tags and manifests, resurrectors delete and at once re-push the same digests, an
 * index pusher and a subject pusher (with referrers) come and go, an abandoner leaves 1,000 upload sessions
 * behind and pullers pull, 4 collectors (each its own connection pool, as separate replicas would be) run with a
 * 2 s review delay. Every few seconds a checker takes a snapshot and checks that every tag's manifest and all its
 * descendants exist in metadata and storage, that every blob row's object exists, and tracks how long content
 * stays unreachable. At the end every blob object is rehashed.
 *
 * Figures: referenced-but-missing objects (0), broken acknowledged images (0), deadlocks (0), the share of content
 * unreachable for longer than the delay + 30 s that was deleted in that time (at least 99 %), abandoned uploads
 * purged with storage back to its baseline. The last line is `gc-soak: N passed, N failed`.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type * as Minio from 'minio';
import { GcWorker, createGcWorker } from '@lading/gc';
import type { Database } from '@lading/metadata';
import { validateManifest } from '@lading/oci';
import { blobKey } from '@lading/storage';
import { TestBlob, TestManifest, imageIndex, imageManifest, makeBlob, makeManifest } from '@lading/testing';
import { RealParts, deadlocksOf, openRealParts } from '@lading/gc/test/real-infra';
import { Answer, RegistryClient, RegistryUnderTest, startRegistry } from '@lading/gc/test/registry-under-test';

/** How long and how hard to soak. */
export interface SoakOptions {
  /** The load phase; the drain (review delay + 30 s and a bit) follows. */
  loadMs: number;
  label: string;
  /** Write progress lines to stderr. */
  progress?: boolean;
}

/** One pass/fail line. */
export interface SoakCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/** What the soak measured. */
export interface SoakResult {
  checks: SoakCheck[];
  figures: string[];
}

const REVIEW_DELAY_MS = 2_000;
const GRACE_MS = REVIEW_DELAY_MS + 30_000;
const CHECK_EVERY_MS = 3_000;
const ABANDONED_UPLOADS = 1_000;
const PLAIN_REPOS = ['soak/r0', 'soak/r1', 'soak/r2', 'soak/r3', 'soak/team/r4'];
const TAGS = ['t0', 't1', 't2', 't3'];
const INDEX_REPO = 'soak/idx';
const SUBJECT_REPOS = ['soak/sub0', 'soak/sub1'];
const REFERRER_TYPE = 'application/vnd.example.signature.v1+json';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)];
const chance = (p: number) => Math.random() < p;

/** An image as pushed: its manifest and the blobs it needs. */
interface Image {
  manifest: TestManifest;
  blobs: TestBlob[];
}

/** Counts of what the actors did and saw. */
interface Activity {
  acks: number;
  cleanRetries: number;
  pulls: number;
  deletes: number;
  resurrections: number;
  retags: number;
  indexes: number;
  referrers: number;
  subjectDeletes: number;
  abandoned: number;
  serverErrors: string[];
  brokenPulls: string[];
  /** Latency per kind of call: count, total and worst milliseconds. */
  latency: Map<string, { n: number; totalMs: number; maxMs: number }>;
}

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
}

async function readAll(stream: Readable): Promise<Buffer> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return Buffer.from(hash.digest('hex'));
}

/** Runs the soak; resolves with its checks and figures (it never throws for a failed check). */
export async function runGcSoak(options: SoakOptions): Promise<SoakResult> {
  const log = (line: string) => {
    if (options.progress) process.stderr.write(`gc-soak: ${line}\n`);
  };
  const parts: RealParts = await openRealParts({
    name: 'soak',
    storage: 's3',
    poolSize: 24,
    config: { gc: { reviewDelay: '2s', allowShortDelay: true, uploadTtl: '5s', pollInterval: '1s', sweepInterval: '5s', workers: 1 } },
  });
  const result: SoakResult = { checks: [], figures: [] };
  let reg: RegistryUnderTest | null = null;
  const collectors: GcWorker[] = [];
  try {
    reg = await startRegistry(parts);
    const checkerDb = await parts.openPool(4);
    const deadlocksBefore = await deadlocksOf(checkerDb, parts.databaseName);
    for (let i = 0; i < 4; i++) {
      const db = await parts.openPool(3);
      const worker = createGcWorker({ ...parts, db, logger: parts.logger.child({ collector: i }) });
      worker.start();
      collectors.push(worker);
    }
    const activity: Activity = {
      acks: 0,
      cleanRetries: 0,
      pulls: 0,
      deletes: 0,
      resurrections: 0,
      retags: 0,
      indexes: 0,
      referrers: 0,
      subjectDeletes: 0,
      abandoned: 0,
      serverErrors: [],
      brokenPulls: [],
      latency: new Map(),
    };
    const api = new CountingClient(reg.url, activity);
    const shared = Array.from({ length: 16 }, (_, i) => makeBlob(1024 * (1 + (i % 8)) + i));
    const recent: Array<{ repository: string; tag: string; image: Image }> = [];

    const newImage = (): Image => {
      const config = makeBlob(`{"architecture":"amd64","os":"linux","id":"${randomBytes(8).toString('hex')}"}`);
      const layers = [...new Set([pick(shared), pick(shared), pick(shared)])];
      if (chance(0.4)) layers.push(makeBlob(512 + Math.floor(Math.random() * 4096)));
      return { manifest: imageManifest(config, layers), blobs: [config, ...layers] };
    };

    /** Pushes like a client: HEAD each blob, upload the missing ones, PUT; retried when a blob vanished. */
    const pushImage = async (repository: string, reference: string, image: Image, headFirst = true): Promise<boolean> => {
      for (let attempt = 0; attempt < 4; attempt++) {
        for (const blob of image.blobs) {
          if (headFirst && attempt === 0 && (await api.headBlob(repository, blob.digest)).status === 200) continue;
          const up = chance(0.7) ? await api.uploadBlob(repository, blob) : await api.uploadBlobChunked(repository, blob);
          if (up.status !== 201) return false;
        }
        const put = await api.putManifest(repository, reference, image.manifest);
        if (put.status === 201) return true;
        if (put.code !== 'MANIFEST_BLOB_UNKNOWN') return false;
        activity.cleanRetries++;
      }
      return false;
    };

    const loadEnd = Date.now() + options.loadMs;
    const running = () => Date.now() < loadEnd;
    const actor = async (name: string, body: () => Promise<void>) => {
      while (running()) {
        try {
          await body();
        } catch (err) {
          activity.serverErrors.push(`${name}: ${(err as Error).message}`);
          await sleep(100);
        }
      }
    };

    const pusher = () =>
      actor('pusher', async () => {
        const repository = pick(PLAIN_REPOS);
        const tag = pick(TAGS);
        const image = newImage();
        if (await pushImage(repository, tag, image)) {
          activity.acks++;
          recent.push({ repository, tag, image });
          if (recent.length > 50) recent.shift();
        }
        // Sometimes an image pushed by digest only: garbage from the start.
        if (chance(0.15)) {
          const loose = newImage();
          await pushImage(pick(PLAIN_REPOS), loose.manifest.digest, loose, false);
        }
      });

    const retagger = () =>
      actor('retagger', async () => {
        const repository = pick(PLAIN_REPOS);
        const got = await api.getManifest(repository, pick(TAGS));
        if (got.status === 200) {
          const manifest = { body: got.body, digest: got.headers.get('docker-content-digest') as string, mediaType: got.headers.get('content-type') as string, doc: {} };
          if ((await api.putManifest(repository, pick(TAGS), manifest)).status === 201) activity.retags++;
        }
        await sleep(50);
      });

    const deleter = () =>
      actor('deleter', async () => {
        const repository = pick(PLAIN_REPOS);
        if (chance(0.6)) {
          if ((await api.deleteManifest(repository, pick(TAGS))).status === 202) activity.deletes++;
        } else {
          const got = await api.getManifest(repository, pick(TAGS));
          const digest = got.headers.get('docker-content-digest');
          if (got.status === 200 && digest && (await api.deleteManifest(repository, digest)).status === 202) activity.deletes++;
        }
        await sleep(150);
      });

    const resurrector = () =>
      actor('resurrector', async () => {
        const entry = recent.length > 0 ? pick(recent) : null;
        if (!entry) return sleep(200);
        await api.deleteManifest(entry.repository, entry.image.manifest.digest);
        // Re-push around the moment the collector reviews the blobs the delete queued.
        await sleep(Math.random() * REVIEW_DELAY_MS * 2);
        if (await pushImage(entry.repository, entry.tag, entry.image, false)) {
          activity.resurrections++;
          activity.acks++;
        }
      });

    const indexPusher = () =>
      actor('index', async () => {
        const children = [newImage(), newImage()];
        for (const child of children) if (!(await pushImage(INDEX_REPO, child.manifest.digest, child))) return;
        const index = imageIndex(children.map((c) => c.manifest));
        const put = await api.putManifest(INDEX_REPO, pick(['i0', 'i1']), index);
        if (put.status === 201) {
          activity.indexes++;
          activity.acks++;
        }
        if (chance(0.2)) await api.deleteManifest(INDEX_REPO, pick(['i0', 'i1']));
        await sleep(200);
      });

    const subjectPusher = () =>
      actor('subject', async () => {
        const repository = pick(SUBJECT_REPOS);
        const subject = newImage();
        const tag = pick(['s0', 's1', 's2']);
        if (!(await pushImage(repository, tag, subject))) return;
        activity.acks++;
        const empty = makeBlob('{}');
        for (let i = 0; i < 1 + Math.floor(Math.random() * 2); i++) {
          const sig = makeBlob(`{"signature":"${randomBytes(12).toString('hex')}"}`);
          const referrer = makeManifest({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            artifactType: REFERRER_TYPE,
            config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: empty.size },
            layers: [{ mediaType: REFERRER_TYPE, digest: sig.digest, size: sig.size }],
            subject: { mediaType: subject.manifest.mediaType, digest: subject.manifest.digest, size: subject.manifest.body.length },
          });
          if (await pushImage(repository, referrer.digest, { manifest: referrer, blobs: [empty, sig] })) activity.referrers++;
        }
        await sleep(300);
        if (chance(0.5)) {
          const byDigest = chance(0.5);
          if ((await api.deleteManifest(repository, byDigest ? subject.manifest.digest : tag)).status === 202) activity.subjectDeletes++;
        }
      });

    const abandonedIds: string[] = [];
    const abandoner = async () => {
      // 1,000 sessions, spread over the first part of the load, each opened and written to, then left.
      const pause = Math.min(options.loadMs * 0.6, 60_000) / (ABANDONED_UPLOADS / 10);
      while (activity.abandoned < ABANDONED_UPLOADS) {
        const started = Date.now();
        const locations = await Promise.all(Array.from({ length: 10 }, () => api.abandonUpload(pick(PLAIN_REPOS), randomBytes(256 + Math.floor(Math.random() * 2048)))));
        activity.abandoned += locations.length;
        for (const l of locations) abandonedIds.push(l.split('/').pop() as string);
        await sleep(Math.max(0, pause - (Date.now() - started)));
      }
    };

    const checker = new Checker(checkerDb, parts, activity);
    const puller = () =>
      actor('puller', async () => {
        await checker.pullOne(api);
        await sleep(20);
      });

    log(`load for ${options.loadMs / 1000}s`);
    let checking = true;
    const checks = (async () => {
      while (checking) {
        const started = Date.now();
        await checker.tick().catch((err) => activity.serverErrors.push(`checker: ${(err as Error).message}`));
        log(`tick: ${checker.summary()}`);
        await sleep(Math.max(0, CHECK_EVERY_MS - (Date.now() - started)));
      }
    })();
    await Promise.all([
      pusher(),
      pusher(),
      pusher(),
      pusher(),
      retagger(),
      deleter(),
      resurrector(),
      resurrector(),
      indexPusher(),
      subjectPusher(),
      puller(),
      puller(),
      abandoner(),
    ]);
    const loadStopped = Date.now();
    log('load stopped; draining');
    // Drain: everything unreachable at the end must be gone within the delay + 30 s, abandoned sessions too.
    const sessionsLeft = async () =>
      Number((await checkerDb.query<{ n: number }>(`SELECT count(*)::int AS n FROM uploads WHERE id::text = ANY($1::text[])`, [abandonedIds])).rows[0].n);
    while (Date.now() - loadStopped < GRACE_MS + 2 * CHECK_EVERY_MS && (checker.unresolved() > 0 || (await sessionsLeft()) > 0)) await sleep(500);
    checking = false;
    await checks;
    await checker.tick();
    await Promise.all(collectors.map((c) => c.stop()));
    const rehash = await checker.rehashAll();
    const deadlocks = (await sleep(1500), await deadlocksOf(checkerDb, parts.databaseName)) - deadlocksBefore;
    const loggedDeadlocks = parts.problems.filter((p) => p.code === '40P01').length;
    const leftover = await checkerDb.query<{ uploads: number; tombstones: number; pins: number }>(
      `SELECT (SELECT count(*) FROM uploads WHERE id::text = ANY($1::text[]))::int AS uploads,
              (SELECT count(*) FROM gc_tombstones)::int AS tombstones, (SELECT count(*) FROM gc_blob_pins)::int AS pins`,
      [abandonedIds],
    );
    const uploadObjects = await listKeys(parts.s3!.client, parts.s3!.bucket, 'uploads/');
    const totals = collectors.reduce(
      (t, c) => ({
        manifests: t.manifests + c.counters.deleted.manifests,
        blobs: t.blobs + c.counters.deleted.blobs,
        objects: t.objects + c.counters.deleted.objects,
        uploads: t.uploads + c.counters.deleted.uploads,
        bytes: t.bytes + c.counters.bytesFreed,
        busy: t.busy + c.counters.postponed.busy + c.counters.postponed.timeout,
        pinned: t.pinned + c.counters.postponed.pinned,
        storageErrors: t.storageErrors + c.counters.storageErrors,
        errors: t.errors + c.counters.errors,
      }),
      { manifests: 0, blobs: 0, objects: 0, uploads: 0, bytes: 0, busy: 0, pinned: 0, storageErrors: 0, errors: 0 },
    );
    const g = checker.garbage();
    const lateItems = await checker.explainLate(5);
    const share = g.population === 0 ? 0 : (100 * g.inTime) / g.population;
    const a = activity;
    result.figures.push(
      `gc-soak (${options.label}): ${Math.round(options.loadMs / 1000)} s of load, 4 collectors, review delay ${REVIEW_DELAY_MS / 1000} s`,
      `  load: ${a.acks} acknowledged pushes (${a.cleanRetries} clean retries after MANIFEST_BLOB_UNKNOWN), ${a.retags} retags, ${a.deletes} deletes, ${a.resurrections} resurrections, ${a.indexes} indexes, ${a.referrers} referrers, ${a.subjectDeletes} subject deletes, ${a.pulls} pulls, ${a.abandoned} abandoned uploads`,
      `  checker: ${checker.ticks} snapshots; referenced-but-missing objects ${checker.missingObjects.length}; broken acknowledged images ${checker.broken.length + a.brokenPulls.length} (${checker.broken.length} in snapshots, ${a.brokenPulls.length} in pulls)`,
      `  deadlocks: ${deadlocks} (pg_stat_database), ${loggedDeadlocks} logged`,
      `  unreachable > delay + 30 s: ${g.population} items, ${g.inTime} deleted in time (${share.toFixed(2)} %), ${g.late} late, ${g.unresolved} unresolved; slowest ${(g.slowestMs / 1000).toFixed(1)} s, median ${(g.medianMs / 1000).toFixed(1)} s`,
      `  collectors: deleted ${totals.manifests} manifests, ${totals.blobs} blobs, ${totals.objects} objects (${(totals.bytes / 1048576).toFixed(1)} MiB freed), ${totals.uploads} upload sessions; postponed ${totals.busy} busy, ${totals.pinned} pinned; ${totals.storageErrors} storage errors, ${totals.errors} step errors`,
      `  uploads: ${abandonedIds.length} abandoned, ${leftover.rows[0].uploads} left; ${uploadObjects.length} objects under uploads/ (baseline 0); ${leftover.rows[0].tombstones} tombstones, ${leftover.rows[0].pins} pins left`,
      ...lateItems.map((l) => `  late: ${l}`),
      ...[...checker.slow.values()].slice(0, options.progress ? 20 : 3).map((l) => `  slow: ${l}`),
      `  final rehash: ${rehash.checked} blob objects, ${rehash.bad.length} missing or wrong`,
      `  API latency (mean/max ms): ${[...a.latency.entries()].sort().map(([k, l]) => `${k} ${Math.round(l.totalMs / l.n)}/${l.maxMs} (${l.n})`).join(', ')}`,
      `  API 5xx answers: ${a.serverErrors.length}${a.serverErrors.length ? ` (${a.serverErrors.slice(0, 5).join('; ')})` : ''}`,
    );
    const check = (name: string, ok: boolean, detail: string) => result.checks.push({ name, ok, detail });
    check('referenced-but-missing objects', checker.missingObjects.length === 0, checker.missingObjects.slice(0, 5).join('; ') || '0');
    check('broken acknowledged images', checker.broken.length + a.brokenPulls.length === 0, [...checker.broken, ...a.brokenPulls].slice(0, 5).join('; ') || '0');
    check('deadlocks', deadlocks === 0 && loggedDeadlocks === 0, `${deadlocks} counted, ${loggedDeadlocks} logged`);
    check('unreachable content deleted within delay + 30 s', g.population > 0 && share >= 99, `${share.toFixed(2)} % of ${g.population}`);
    check('abandoned uploads purged, storage at baseline', abandonedIds.length === ABANDONED_UPLOADS && leftover.rows[0].uploads === 0 && uploadObjects.length === 0, `${leftover.rows[0].uploads} sessions, ${uploadObjects.length} objects left`);
    check('every blob row has its object, byte-exact', rehash.bad.length === 0 && rehash.checked > 0, rehash.bad.slice(0, 5).join('; ') || `${rehash.checked} ok`);
    check('no object deletion left pending', leftover.rows[0].tombstones === 0 && leftover.rows[0].pins === 0, `${leftover.rows[0].tombstones} tombstones, ${leftover.rows[0].pins} pins`);
    check('no 5xx answers', a.serverErrors.length === 0, a.serverErrors.slice(0, 5).join('; ') || '0');
  } finally {
    await Promise.all(collectors.map((c) => c.stop().catch(() => undefined)));
    await reg?.close();
    await parts.close();
  }
  const passed = result.checks.filter((c) => c.ok).length;
  for (const c of result.checks) result.figures.push(`  ${c.ok ? 'PASS' : 'FAIL'} ${c.name}: ${c.detail}`);
  result.figures.push(`gc-soak: ${passed} passed, ${result.checks.length - passed} failed`);
  return result;
}

async function listKeys(client: Minio.Client, bucket: string, prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const item of client.listObjectsV2(bucket, prefix, true) as AsyncIterable<Minio.BucketItem>) if (item.name) names.push(item.name);
  return names;
}

/** A client that records every 5xx answer. */
class CountingClient extends RegistryClient {
  constructor(url: string, private readonly activity: Activity) {
    super(url);
  }

  override async send(method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}, timeoutMs = 60_000): Promise<Answer> {
    const started = Date.now();
    const answer = await super.send(method, path, body, headers, timeoutMs);
    const kind = `${method} ${/\/manifests\//.test(path) ? 'manifest' : /\/uploads\//.test(path) ? 'upload' : 'blob'}`;
    const l = this.activity.latency.get(kind) ?? { n: 0, totalMs: 0, maxMs: 0 };
    const ms = Date.now() - started;
    this.activity.latency.set(kind, { n: l.n + 1, totalMs: l.totalMs + ms, maxMs: Math.max(l.maxMs, ms) });
    if (answer.status >= 500) this.activity.serverErrors.push(`${method} ${path.split('?')[0]} → ${answer.status} ${answer.code ?? ''}`);
    return answer;
  }
}

interface Snapshot {
  nowMs: number;
  tags: Array<{ repositoryId: number; repository: string; tag: string; digest: string }>;
  manifests: Map<string, { repositoryId: number; digest: string; mediaType: string; payload: Buffer; subject: string | null; ver: string }>;
  blobs: Map<string, { size: number; ver: string }>;
  links: Set<string>;
  youngLinks: Set<string>;
  refs: Array<{ repositoryId: number; manifest: string; blob: string }>;
}

/** Takes snapshots, checks the invariants on them, and tracks how long content stays unreachable. */
class Checker {
  ticks = 0;
  readonly broken: string[] = [];
  readonly missingObjects: string[] = [];
  /** Unreachable items: key → when first seen unreachable. */
  private readonly tracked = new Map<string, number>();
  private readonly durations: number[] = [];
  private late = 0;
  private readonly lateSeen = new Set<string>();
  /** Items unreachable for over 25 s, with what the database said about them then (diagnostics). */
  readonly slow = new Map<string, string>();

  constructor(
    private readonly db: Database,
    private readonly parts: RealParts,
    private readonly activity: Activity,
  ) {}

  private async snapshot(): Promise<Snapshot> {
    return this.db.transaction(async (tx) => {
      await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      const now = await tx.query<{ ms: number }>(`SELECT (EXTRACT(EPOCH FROM now()) * 1000)::float8 AS ms`);
      const tags = await tx.query<{ repositoryId: number; repository: string; tag: string; digest: string }>(
        `SELECT t.repository_id AS "repositoryId", r.name AS repository, t.name AS tag, t.manifest_digest AS digest FROM tags t JOIN repositories r ON r.id = t.repository_id`,
      );
      const manifests = await tx.query<{ repositoryId: number; digest: string; mediaType: string; payload: Buffer; subject: string | null; ver: string }>(
        `SELECT repository_id AS "repositoryId", digest, media_type AS "mediaType", payload, subject_digest AS subject, xmin::text AS ver FROM manifests`,
      );
      const blobs = await tx.query<{ digest: string; size: number; ver: string }>(`SELECT digest, size, xmin::text AS ver FROM blobs`);
      const links = await tx.query<{ repositoryId: number; digest: string; young: boolean }>(
        `SELECT repository_id AS "repositoryId", blob_digest AS digest, created_at > now() - make_interval(secs => $1::double precision / 1000) AS young FROM repository_blobs`,
        [REVIEW_DELAY_MS * 1.1],
      );
      const refs = await tx.query<{ repositoryId: number; manifest: string; blob: string }>(
        `SELECT repository_id AS "repositoryId", manifest_digest AS manifest, blob_digest AS blob FROM manifest_blob_references`,
      );
      return {
        nowMs: Number(now.rows[0].ms),
        tags: tags.rows,
        manifests: new Map(manifests.rows.map((m) => [`${m.repositoryId}@${m.digest}`, { ...m, payload: Buffer.from(m.payload) }])),
        blobs: new Map(blobs.rows.map((b) => [b.digest, { size: b.size, ver: b.ver }])),
        links: new Set(links.rows.map((l) => `${l.repositoryId}@${l.digest}`)),
        youngLinks: new Set(links.rows.filter((l) => l.young).map((l) => l.digest)),
        refs: refs.rows,
      };
    });
  }

  /** Checks one tagged manifest and its descendants in a snapshot; resolves with what is missing. */
  private missingUnder(s: Snapshot, repositoryId: number, digest: string, depth = 0): string[] {
    const m = s.manifests.get(`${repositoryId}@${digest}`);
    if (!m) return [`manifest ${digest}`];
    let refs;
    try {
      refs = validateManifest(m.payload, m.mediaType).references;
    } catch {
      return [`unparseable ${digest}`];
    }
    const out: string[] = [];
    for (const r of refs) {
      if (!r.mustExist) continue;
      if (r.kind === 'blob') {
        if (!s.blobs.has(r.descriptor.digest)) out.push(`blob row ${r.descriptor.digest}`);
        if (!s.links.has(`${repositoryId}@${r.descriptor.digest}`)) out.push(`link ${r.descriptor.digest}`);
      } else if (depth < 4) {
        out.push(...this.missingUnder(s, repositoryId, r.descriptor.digest, depth + 1));
      }
    }
    return out;
  }

  async tick(): Promise<void> {
    const s = await this.snapshot();
    this.ticks++;
    // Every tag → manifest → descendants exist (metadata).
    for (const t of s.tags) {
      const missing = this.missingUnder(s, t.repositoryId, t.digest);
      if (missing.length > 0 && this.broken.length < 50) this.broken.push(`${t.repository}:${t.tag} → ${missing.join(', ')}`);
    }
    // Every blob row's object exists (a missing one is confirmed by the same row version still being there).
    const missing: Array<[string, string]> = [];
    await pool([...s.blobs.entries()], 16, async ([digest, b]) => {
      if ((await this.parts.store.stat(blobKey(digest))) === null) missing.push([digest, b.ver]);
    });
    for (const [digest, ver] of missing) {
      const still = await this.db.query(`SELECT 1 FROM blobs WHERE digest = $1 AND xmin::text = $2`, [digest, ver]);
      if (still.rows.length > 0) this.missingObjects.push(digest);
    }
    // Reachability: tags → manifests → index children; referrers of reachable subjects; their blobs; young links.
    const reachable = new Set<string>();
    const work = s.tags.map((t) => `${t.repositoryId}@${t.digest}`);
    const referrersBySubject = new Map<string, string[]>();
    for (const [key, m] of s.manifests) {
      if (!m.subject) continue;
      const subjectKey = `${m.repositoryId}@${m.subject}`;
      referrersBySubject.set(subjectKey, [...(referrersBySubject.get(subjectKey) ?? []), key]);
    }
    while (work.length > 0) {
      const key = work.pop()!;
      if (reachable.has(key)) continue;
      const m = s.manifests.get(key);
      if (!m) continue;
      reachable.add(key);
      try {
        for (const r of validateManifest(m.payload, m.mediaType).references) if (r.kind === 'manifest') work.push(`${m.repositoryId}@${r.descriptor.digest}`);
      } catch {
        // unparseable: kept by the collector anyway
      }
      work.push(...(referrersBySubject.get(key) ?? []));
    }
    const reachableBlobs = new Set(s.refs.filter((r) => reachable.has(`${r.repositoryId}@${r.manifest}`)).map((r) => r.blob));
    const present = new Set<string>();
    for (const [key, m] of s.manifests) {
      const item = `m:${key}:${m.ver}`;
      present.add(item);
      if (reachable.has(key)) this.tracked.delete(item);
      else if (!this.tracked.has(item)) this.tracked.set(item, s.nowMs);
    }
    for (const [digest, b] of s.blobs) {
      const item = `b:${digest}:${b.ver}`;
      present.add(item);
      if (reachableBlobs.has(digest) || s.youngLinks.has(digest)) this.tracked.delete(item);
      else if (!this.tracked.has(item)) this.tracked.set(item, s.nowMs);
    }
    for (const [item, since] of [...this.tracked]) {
      if (present.has(item) && s.nowMs - since > 25_000 && !this.slow.has(item) && this.slow.size < 20) {
        this.slow.set(item, `${Math.round((s.nowMs - since) / 1000)} s: ${(await this.explain([item]))[0]}`);
      }
      if (!present.has(item)) {
        this.durations.push(s.nowMs - since);
        if (s.nowMs - since > GRACE_MS && !this.lateSeen.has(item)) this.late++;
        this.tracked.delete(item);
      } else if (s.nowMs - since > GRACE_MS && !this.lateSeen.has(item)) {
        this.lateSeen.add(item);
        this.late++;
      }
    }
  }

  /** Pulls one tagged image through the API; a failure counts only if the tag did not change meanwhile. */
  async pullOne(api: RegistryClient): Promise<void> {
    const row = await this.db.query<{ repository: string; tag: string; stamp: string }>(
      `SELECT r.name AS repository, t.name AS tag, t.updated_at::text AS stamp FROM tags t JOIN repositories r ON r.id = t.repository_id ORDER BY random() LIMIT 1`,
    );
    const t = row.rows[0];
    if (!t) return;
    const failures: string[] = [];
    const pull = async (reference: string, depth: number): Promise<void> => {
      const got = await api.getManifest(t.repository, reference);
      if (got.status !== 200) return void failures.push(`manifest ${reference}: ${got.status}`);
      const refs = validateManifest(got.body, got.headers.get('content-type') ?? undefined).references;
      for (const r of refs) {
        if (!r.mustExist) continue;
        if (r.kind === 'manifest' && depth < 3) await pull(r.descriptor.digest, depth + 1);
        if (r.kind === 'blob') {
          const blob = await api.getBlob(t.repository, r.descriptor.digest);
          if (blob.status !== 200 || createHash('sha256').update(blob.body).digest('hex') !== r.descriptor.digest.slice(7)) {
            failures.push(`blob ${r.descriptor.digest}: ${blob.status}`);
          }
        }
      }
    };
    await pull(t.tag, 0);
    this.activity.pulls++;
    if (failures.length === 0) return;
    const again = await this.db.query(
      `SELECT 1 FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = $1 AND t.name = $2 AND t.updated_at::text = $3`,
      [t.repository, t.tag, t.stamp],
    );
    if (again.rows.length > 0 && this.activity.brokenPulls.length < 50) this.activity.brokenPulls.push(`${t.repository}:${t.tag} → ${failures.join(', ')}`);
  }

  /** Late items still present, with what the database says about them (for the figures). */
  async explainLate(limit: number): Promise<string[]> {
    return this.explain([...this.lateSeen].filter((k) => this.tracked.has(k)).slice(0, limit));
  }

  private async explain(items: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const item of items) {
      const [kind, a, b] = item.split(':');
      if (kind === 'm') {
        const [repositoryId, algo] = a.split('@');
        const digest = `${algo}:${b}`;
        const r = await this.db.query(
          `SELECT EXISTS (SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2) AS present,
                  (SELECT row_to_json(q) FROM gc_manifest_review_queue q WHERE q.repository_id = $1 AND q.digest = $2) AS queue,
                  (SELECT count(*) FROM tags WHERE repository_id = $1 AND manifest_digest = $2)::int AS tags,
                  (SELECT count(*) FROM manifest_children WHERE repository_id = $1 AND child_digest = $2)::int AS parents,
                  (SELECT subject_digest FROM manifests WHERE repository_id = $1 AND digest = $2) AS subject`,
          [Number(repositoryId), digest],
        );
        out.push(`manifest ${repositoryId}@${digest}: ${JSON.stringify(r.rows[0])}`);
      } else {
        const digest = `${a}:${b}`;
        const r = await this.db.query(
          `SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = $1) AS present,
                  (SELECT row_to_json(q) FROM gc_blob_review_queue q WHERE q.digest = $1) AS queue,
                  (SELECT count(*) FROM manifest_blob_references WHERE blob_digest = $1)::int AS refs,
                  (SELECT json_agg(rb) FROM repository_blobs rb WHERE rb.blob_digest = $1) AS links`,
          [digest],
        );
        out.push(`blob ${digest}: ${JSON.stringify(r.rows[0])}`);
      }
    }
    return out;
  }

  /** Items still unreachable and not yet deleted. */
  unresolved(): number {
    return [...this.tracked.keys()].filter((k) => !this.lateSeen.has(k)).length;
  }

  garbage(): { population: number; inTime: number; late: number; unresolved: number; slowestMs: number; medianMs: number } {
    const inTime = this.durations.filter((d) => d <= GRACE_MS).length;
    const sorted = [...this.durations].sort((a, b) => a - b);
    return {
      population: inTime + this.late,
      inTime,
      late: this.late,
      unresolved: this.unresolved(),
      slowestMs: sorted[sorted.length - 1] ?? 0,
      medianMs: sorted[Math.floor(sorted.length / 2)] ?? 0,
    };
  }

  summary(): string {
    const g = this.garbage();
    return `tracked ${this.tracked.size}, deleted ${g.inTime} in time, ${g.late} late, broken ${this.broken.length + this.activity.brokenPulls.length}, missing objects ${this.missingObjects.length}`;
  }

  /** Rehashes every blob row's object. */
  async rehashAll(): Promise<{ checked: number; bad: string[] }> {
    const rows = await this.db.query<{ digest: string }>(`SELECT digest FROM blobs`);
    const bad: string[] = [];
    await pool(rows.rows, 16, async ({ digest }) => {
      try {
        const hex = (await readAll(await this.parts.store.read(blobKey(digest)))).toString();
        if (`sha256:${hex}` !== digest) bad.push(`${digest}: hashes to ${hex}`);
      } catch (err) {
        bad.push(`${digest}: ${(err as Error).message}`);
      }
    });
    return { checked: rows.rows.length, bad };
  }
}
