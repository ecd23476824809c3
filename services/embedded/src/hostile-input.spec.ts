/**
 * Hostile input, property-based: fast-check throws hostile strings (U+0000, lone surrogates, CR/LF, quotes,
 * right-to-left marks, 64 KiB values, `..`, percent-encoding valid and not) into every path segment, query
 * parameter and JSON field of every route of the route table and of the admin API, against the real embedded
 * registry: with auth off (the handlers answer), with auth on unauthenticated (the gateway and the token service
 * answer) and with admin credentials (the admin API answers). Every answer must be below 500, JSON in the OCI
 * envelope (never HTML or a stack), and a refused request must leave everything stored as it was.
 *
 * Bounded: a fixed seed and a fixed number of runs per property (no shrinking: the first failing request is
 * reported as it was sent, with the seed to replay it).
 *
 * Run: NODE_OPTIONS=--experimental-vm-modules npx jest services/embedded/src/hostile-input.spec.ts
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { AdminApiDeps, type RouterRoute, createAdminRouter, routesOf } from '@lading/auth';
import { LadingConfig, LadingConfigInput, parseConfig } from '@lading/config';
import type { Database } from '@lading/metadata';
import { createHttpServer } from '@lading/runtime';
import { MediaTypes, isStorableText } from '@lading/oci';
import { AUDIT_PARTITION_KEY } from '@lading/events';
import { snapshotState } from '@lading/testing';
import { createLogger } from '@lading/telemetry';
import { EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';
import { WireRequest, WireResponse, send } from '../test/bad-input-client';
import { Seed, seedMain } from '../test/bad-input-seed';
import {
  ADMIN_BODY_FIELDS,
  DOOR_QUERY_PARAMETERS,
  DoorRoute,
  SHAPED_PARAMETERS,
  TOKEN_FORM_FIELDS,
  doorRoutes,
  hostileJson,
  hostileString,
  templateOf,
  urlComponent,
} from '../test/hostile-input-cases';
import { ROUTES, matchRoute } from '@lading/oci';

/** The seed of every property: change it to explore, keep it fixed in the suite. */
const SEED = 20261207;
const RUNS = { door: 600, doorWithAuth: 800, admin: 400, manifest: 100 };
const ADMIN = { user: 'root', password: 'root-password-1' };
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Admin routes that take no input at all, so that nothing hostile can be sent to them (and each call changes state). */
const ADMIN_ROUTES_WITHOUT_INPUT = ['POST /keys/rotate'];

interface Running {
  registry: EmbeddedRegistry;
  config: LadingConfig;
  server: http.Server;
  port: number;
  dataDir: string;
}

async function start(overrides: LadingConfigInput): Promise<Running> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'lading-hostile-'));
  const config = parseConfig({ ...overrides, data: { dir: dataDir }, log: { level: 'silent', access: false } });
  const registry = await createEmbeddedRegistry(config, createLogger({ service: 'hostile-input', level: 'silent' }));
  // Built as every process builds its server, so that what node's parser refuses is answered as in production.
  const server = createHttpServer(registry.app, config.limits);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { registry, config, server, port: (server.address() as AddressInfo).port, dataDir };
}

async function stop(running: Running | undefined): Promise<void> {
  if (!running) return;
  running.server.closeAllConnections();
  await new Promise<void>((resolve) => running.server.close(() => resolve()));
  await running.registry.close();
  await rm(running.dataDir, { recursive: true, force: true });
}

/**
 * Everything the registry stores: every row of every table (the auth and webhook tables too, not only the
 * registry's, but not the failed-login counters and the audit trail, which count and record attempts by design) and
 * every file of blob storage.
 */
async function fingerprint(db: Database, dataDir: string): Promise<Record<string, unknown>> {
  const tables = await db.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`);
  const rows: Record<string, string> = {};
  for (const { tablename } of tables.rows) {
    if (/login|attempt|audit/.test(tablename)) continue;
    const all = await db.query(`SELECT * FROM "${tablename}" ${tablename === 'outbox' ? `WHERE repository <> '${AUDIT_PARTITION_KEY}'` : ''} ORDER BY 1`);
    rows[tablename] = createHash('sha256').update(JSON.stringify(all.rows, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).digest('hex');
  }
  return { rows, files: (await snapshotState(db, path.join(dataDir, 'blobs'))).files };
}

/** Everything in a response that would betray internals. */
const LEAKS = [/\n\s+at /, /\bError:/, /node_modules/, /\.ts:\d+/, /TypeError|ReferenceError|SyntaxError|RangeError/, /<html|<pre>/i];

/** The request as a reader can replay it: method, path and body cut to a readable length. */
function described(req: WireRequest): string {
  const body = req.body === undefined ? '' : ` body=${JSON.stringify(String(req.body).slice(0, 300))}`;
  return `${req.method} ${req.path.slice(0, 400)}${body}`;
}

/** A challenge as the registry builds it: Bearer with realm, service, scope and error as quoted-strings, or Basic. */
const CHALLENGE = /^(?:Bearer (?:realm|service|scope|error)="(?:[^"\\]|\\.)*"(?:,(?:realm|service|scope|error)="(?:[^"\\]|\\.)*")*|Basic realm="lading-admin")$/;

/** The answer must be below 500, an error JSON in the OCI envelope (never a page), and leak nothing. */
function checkAnswer(req: WireRequest, res: WireResponse): void {
  const said = `${described(req)}\n  → ${res.status} ${res.headers['content-type'] ?? '(no content-type)'} ${res.text.slice(0, 300)}`;
  if (res.status >= 500) throw new Error(`a 5xx: ${said}`);
  for (const leak of LEAKS) if (leak.test(res.text)) throw new Error(`internals leaked (${leak}): ${said}`);
  const challenge = res.headers['www-authenticate'];
  if (challenge !== undefined && !CHALLENGE.test(challenge)) throw new Error(`a challenge with a parameter no registry sends (injected?): ${challenge.slice(0, 300)}\n${said}`);
  if (req.method === 'HEAD' || res.status === 204 || res.status === 304) {
    if (res.body.length !== 0) throw new Error(`a body on a bodiless answer: ${said}`);
    return;
  }
  // A success carries content (a manifest, a blob, a token), never a page.
  if (res.status < 400) {
    if (/html/i.test(String(res.headers['content-type']))) throw new Error(`HTML: ${said}`);
    return;
  }
  if (!/^application\/json/.test(String(res.headers['content-type']))) throw new Error(`an error that is not JSON: ${said}`);
  let body: unknown;
  try {
    body = JSON.parse(res.text);
  } catch {
    throw new Error(`a body that does not parse as JSON: ${said}`);
  }
  {
    const errors = (body as { errors?: Array<{ code?: unknown; message?: unknown }> }).errors;
    if (!Array.isArray(errors) || errors.length === 0 || typeof errors[0].code !== 'string' || typeof errors[0].message !== 'string') {
      throw new Error(`an error outside the OCI envelope: ${said}`);
    }
  }
}

/** How many answers of each status the properties saw (printed at the end: what the runs reached). */
const statuses = new Map<string, number>();

/** Sends `req`, checks the answer, and checks that a refused (or any read-only) request changed nothing. */
async function sendAndCheck(target: Running, req: WireRequest, mayChange: (res: WireResponse) => boolean): Promise<WireResponse> {
  // An earlier request's events are published a moment after they commit (the relay gathers kicks): publish them
  // now, so that marking them published is not taken for a change made by this request.
  await target.registry.flushEvents();
  const before = await fingerprint(target.registry.db, target.dataDir);
  let res: WireResponse;
  try {
    res = await send(target.port, req);
  } catch (err) {
    throw new Error(`no well-formed HTTP answer (${(err as Error).message}): ${described(req)}`);
  }
  checkAnswer(req, res);
  const key = `${res.status}`;
  statuses.set(key, (statuses.get(key) ?? 0) + 1);
  if (!mayChange(res)) {
    const after = await fingerprint(target.registry.db, target.dataDir);
    if (JSON.stringify(after) !== JSON.stringify(before)) {
      throw new Error(`state changed: ${described(req)}\n  → ${res.status} ${res.text.slice(0, 300)}`);
    }
  }
  return res;
}

/** Runs a property with the suite's seed and bound; the failure names the seed to replay it with. */
async function check<T>(arbitrary: fc.Arbitrary<T>, numRuns: number, predicate: (value: T) => Promise<void>): Promise<void> {
  const result = await fc.check(fc.asyncProperty(arbitrary, predicate), { seed: SEED, numRuns, endOnFailure: true });
  if (result.failed) {
    const cause = result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance);
    throw new Error(`hostile input found a defect (fast-check seed ${SEED}, path ${result.counterexamplePath}, run ${result.numRuns}):\n${cause}`);
  }
}

/** Where a door request carries its hostile value. */
type Slot = 'repository' | 'param' | 'query' | 'body';

/**
 * The inputs of one request to the door (the route table): one slot carries a hostile value and the others are
 * valid (the seeded repository, reference, digest or session), so that the hostile value gets past the checks in
 * front of it and reaches the code behind; sometimes a second hostile query parameter comes along as noise.
 */
interface DoorInput {
  route: DoorRoute;
  slot: Slot;
  hostile: string;
  queryName: string;
  noise: [string, string] | null;
  /** Whether a structured parameter gets the hostile string inside a well-formed value (see SHAPED_PARAMETERS). */
  shaped: boolean;
  percent: 'raw' | 'encoded';
  body: unknown;
}

const ANY_QUERY_PARAMETER = [...new Set(Object.values(DOOR_QUERY_PARAMETERS).flat())];

const doorInput: fc.Arbitrary<DoorInput> = fc.constantFrom(...doorRoutes()).chain((route) =>
  fc.record({
    route: fc.constant(route),
    slot: fc.constantFrom<Slot>('repository', 'param', 'query', 'query', 'body'),
    hostile: hostileString,
    queryName: fc.constantFrom(...(DOOR_QUERY_PARAMETERS[route.name] ?? ANY_QUERY_PARAMETER)),
    noise: fc.option(fc.tuple(fc.constantFrom(...ANY_QUERY_PARAMETER), hostileString), { freq: 4 }),
    shaped: fc.boolean(),
    percent: fc.constantFrom<'raw' | 'encoded'>('raw', 'encoded'),
    body: hostileJson,
  }),
);

function queryString(query: Record<string, string>, percent: 'raw' | 'encoded'): string {
  const pairs = Object.entries(query).map(([k, v]) => `${k}=${urlComponent(v, percent)}`);
  return pairs.length ? `?${pairs.join('&')}` : '';
}

/**
 * The request of a door input. With `open` (no auth in front), one that could change state with valid values (a
 * delete, an upload, a push) gets a hostile repository too, unless its hostile value sits where it must make the
 * request fail anyway (the reference, digest or session id; a manifest's body), so that every request must be
 * refused. Without `open` the gateway refuses every unauthenticated request, so any slot may be the only hostile one.
 */
function doorRequest(input: DoorInput, seed: Seed | null, open: boolean): WireRequest {
  const { route, slot, hostile, percent } = input;
  const hasParam = route.template.includes('{param}');
  const refusedAnyway = !open || (slot === 'param' && hasParam) || (slot === 'body' && route.name === 'manifest' && route.method === 'PUT') || route.name === 'token';
  const repository = slot === 'repository' ? hostile : MUTATING.has(route.method) && !refusedAnyway ? '..' : (seed?.repo ?? 'seed/app');
  const valid: Record<string, string> = {
    manifest: 'v1',
    blob: seed?.layer.digest ?? `sha256:${'a'.repeat(64)}`,
    upload: seed?.fresh.id ?? 'upload',
    referrers: seed?.image.digest ?? `sha256:${'b'.repeat(64)}`,
  };
  const param = slot === 'param' ? hostile : (valid[route.name] ?? '');
  const query: Record<string, string> = {};
  if (input.noise) query[input.noise[0]] = input.noise[1];
  const shape = (name: string) => (input.shaped && SHAPED_PARAMETERS[name] ? SHAPED_PARAMETERS[name](hostile) : hostile);
  if (slot === 'query') query[input.queryName] = shape(input.queryName);
  const pathname = route.template.replace('{repository}', repository.split('/').map((s) => urlComponent(s, percent)).join('/')).replace('{param}', urlComponent(param, percent));
  const req: WireRequest = { method: route.method, path: `${pathname}${queryString(query, percent)}` };
  if (slot === 'body' && MUTATING.has(route.method)) {
    if (route.name === 'token') {
      req.headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
      req.body = queryString(Object.fromEntries(TOKEN_FORM_FIELDS.map((f) => [f, shape(f)])), 'encoded').slice(1);
    } else {
      req.headers = { 'Content-Type': route.name === 'manifest' ? MediaTypes.ociManifest : 'application/octet-stream' };
      req.body = JSON.stringify(input.body);
    }
  }
  return req;
}

describe('hostile input: no 5xx, no HTML, nothing stored', () => {
  let open: Running | undefined;
  let guarded: Running | undefined;
  let seed: Seed;
  let adminAuthorization: string;
  let adminRoutes: RouterRoute[];

  beforeAll(async () => {
    [open, guarded] = await Promise.all([
      start({}),
      start({ auth: { enabled: true, loginFailureLimit: 1_000_000 }, admin: ADMIN }),
    ]);
    seed = await seedMain(open.port, 100);
    const basic = (password: string) => `Basic ${Buffer.from(`${ADMIN.user}:${password}`).toString('base64')}`;
    // A personal access token: checking it costs a hash, not argon2, so that the admin property stays fast.
    const pat = await send(guarded.port, { method: 'POST', path: `/admin/v1/users/${ADMIN.user}/tokens`, headers: { Authorization: basic(ADMIN.password), 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'hostile' }) });
    expect(pat.status).toBe(201);
    adminAuthorization = basic(JSON.parse(pat.text).token as string);
    // The first token makes the signing key: before any fingerprint.
    for (const target of [open, guarded]) expect((await send(target.port, { method: 'GET', path: '/token?service=lading' })).status).toBe(200);
    const deps = { db: guarded.registry.db, config: guarded.config } as unknown as AdminApiDeps;
    adminRoutes = routesOf(createAdminRouter(deps));
  });

  afterAll(async () => {
    await Promise.all([stop(open), stop(guarded)]);
    const tally = [...statuses.entries()].sort().map(([status, n]) => `${status}: ${n}`).join(', ');
    console.log(`hostile input (seed ${SEED}): answers by status ${tally}`);
  });

  it('derives a path template from every route of the route table that matches back to that route', () => {
    for (const route of ROUTES.filter((r) => r.name !== 'admin')) {
      const path = templateOf(route).replace('{repository}', 'team/app').replace('{param}', 'p');
      expect({ route: route.name, matched: matchRoute(path)?.route.name }).toEqual({ route: route.name, matched: route.name });
    }
    expect(doorRoutes().length).toBeGreaterThanOrEqual(20);
  });

  it('reads the admin API\'s routes off its router, the webhook and outbox routers included', () => {
    const names = adminRoutes.map((r) => `${r.method} ${r.path}`);
    for (const expected of ['GET /users', 'PUT /users/:name/password', 'DELETE /users/:name/tokens/:token', 'POST /webhooks/', 'PATCH /webhooks/:id', 'POST /outbox/parked/:id/requeue', ...ADMIN_ROUTES_WITHOUT_INPUT]) {
      expect(names).toContain(expected);
    }
  });

  it(`answers hostile requests to every route of the route table with auth off (${RUNS.door} runs)`, async () => {
    await check(doorInput, RUNS.door, async (input) => {
      await sendAndCheck(open!, doorRequest(input, seed, true), () => false);
    });
  });

  it(`answers hostile unauthenticated requests to every route with auth on (${RUNS.doorWithAuth} runs)`, async () => {
    await check(doorInput, RUNS.doorWithAuth, async (input) => {
      await sendAndCheck(guarded!, doorRequest(input, null, false), () => false);
    });
  });

  it(`answers hostile requests to every admin API route, as an admin (${RUNS.admin} runs)`, async () => {
    const routes = adminRoutes.filter((r) => !ADMIN_ROUTES_WITHOUT_INPUT.includes(`${r.method} ${r.path}`));
    const adminInput = fc.record({
      route: fc.constantFrom(...routes),
      params: fc.array(hostileString, { minLength: 3, maxLength: 3 }),
      percent: fc.constantFrom<'raw' | 'encoded'>('raw', 'encoded'),
      query: fc.dictionary(fc.oneof(fc.constantFrom('prefix', 'limit', 'cursor', 'state', 'n'), hostileString), hostileString, { maxKeys: 3 }),
      body: fc.oneof(
        { weight: 6, arbitrary: fc.dictionary(fc.constantFrom(...ADMIN_BODY_FIELDS), hostileJson, { maxKeys: 5 }) },
        { weight: 1, arbitrary: hostileJson },
      ),
    });
    await check(adminInput, RUNS.admin, async (input) => {
      let i = 0;
      const pathname = input.route.path.replace(/:[A-Za-z]+/g, () => urlComponent(input.params[i++], input.percent));
      const query = Object.entries(input.query).map(([k, v]) => `${urlComponent(k, input.percent)}=${urlComponent(v, input.percent)}`);
      const req: WireRequest = {
        method: input.route.method,
        path: `/admin/v1${pathname}${query.length ? `?${query.join('&')}` : ''}`,
        headers: { Authorization: adminAuthorization },
      };
      if (MUTATING.has(req.method)) {
        req.headers!['Content-Type'] = 'application/json';
        req.body = JSON.stringify(input.body);
      }
      // Every hostile value is refused, so no admin call here may change anything.
      const res = await sendAndCheck(guarded!, req, () => false);
      if (MUTATING.has(req.method) && res.status < 400) throw new Error(`a hostile admin request was accepted: ${described(req)} → ${res.status}`);
    });
  });

  it(`refuses manifests whose strings Postgres cannot hold with 400 MANIFEST_INVALID, and stores the others (${RUNS.manifest} runs)`, async () => {
    const text = fc.oneof(hostileString, fc.string({ maxLength: 20 }));
    const manifestInput = fc.record({
      annotations: fc.dictionary(text, text, { minKeys: 1, maxKeys: 3 }),
      layerAnnotations: fc.option(fc.dictionary(text, text, { maxKeys: 2 })),
    });
    await check(manifestInput, RUNS.manifest, async ({ annotations, layerAnnotations }) => {
      const doc = JSON.parse(seed.image.body.toString('utf8')) as { layers: Array<Record<string, unknown>>; annotations?: unknown };
      doc.annotations = annotations;
      if (layerAnnotations) doc.layers[0].annotations = layerAnnotations;
      const req: WireRequest = { method: 'PUT', path: `/v2/${seed.repo}/manifests/hostile`, headers: { 'Content-Type': MediaTypes.ociManifest }, body: JSON.stringify(doc) };
      const storable = [annotations, layerAnnotations ?? {}].every((map) => Object.entries(map).every(([k, v]) => isStorableText(k) && isStorableText(v)));
      const res = await sendAndCheck(open!, req, (r) => r.status === 201);
      const outcome = `${res.status} ${res.status === 400 ? (JSON.parse(res.text) as { errors: Array<{ code: string }> }).errors[0].code : ''}`.trim();
      if (outcome !== (storable ? '201' : '400 MANIFEST_INVALID')) throw new Error(`expected ${storable ? '201' : '400 MANIFEST_INVALID'}, got ${outcome}: ${described(req)}`);
    });
  });
});
