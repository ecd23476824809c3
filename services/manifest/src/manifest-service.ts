/**
 * The manifest service: manifests (OCI and Docker, images and indexes, artifacts), tags, the referrers API and
 * the catalog. The handlers parse, call and render; the writes are domain operations in manifest-writes.ts, where
 * every change writes its events to the outbox and its unlinks to the GC review queues in the same transaction.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import { durationMs } from '@lading/config';
import type { EventBus } from '@lading/events';
import {
  HttpApp,
  adminCallGuard,
  createServiceApp,
  dispatchRoutes,
  finishServiceApp,
  locationFor,
  nextPageLink,
  parsePageRequest,
  principalOf,
  pullsOf,
  readBodyCapped,
  requestContext,
  withFastReads,
} from '@lading/http';
import * as meta from '@lading/metadata';
import { Digest, INTERNAL_REPOSITORY_ADMIN_PATH, MEDIA_TYPE_GRAMMAR, MediaTypes, OciError, RouteMatch, errors, isValidTag, looksLikeDigest, parseDigest } from '@lading/oci';
import type { ServiceDeps } from '@lading/runtime';
import type { BlobStore } from '@lading/storage';
import { type ProxyNamespaces, refuseProxyWrite } from '@lading/upstream';
import { createManifestReader } from './manifest-reader';
import { createRepositoryAdminRouter } from './repository-admin';
import type { ManifestPullThrough } from './manifest-pull-through';
import type { PullRecorder } from './pull-recorder';
import type { PullAudit } from './pull-audit';
import type { ServedListener } from './manifest-reader';
import { ManifestWriteDeps, pushManifest, removeManifest, removeTag } from './manifest-writes';
import { createConfigReader } from './image-metadata';
import { consoleRepositories, consoleTags, renderConsoleRepositories, renderConsoleTags } from './console-api';
import { createEventFeed } from './event-feed';
import { SearchRequest, parseConsoleSearch, parseDockerSearch, renderConsoleSearch, renderDockerSearch, searchViewerOf } from './search-api';

/** What the manifest service is built from. */
export interface ManifestServiceDeps extends ServiceDeps {
  /**
   * Where deletes and tag moves made by others (the garbage collector, other replicas) are heard, to drop cached
   * answers; the process's bus. Optional: with a shared database the caches never need it to stay correct.
   */
  invalidations?: Pick<EventBus, 'subscribe'>;
  /** Pull-through caching: manifest reads in proxied repositories fetch from their upstream; none without it. */
  pullThrough?: ManifestPullThrough;
  /** Notes pulls in proxied repositories, for their last-pulled times (eviction); none noted without it. */
  pulls?: Pick<PullRecorder, 'note'>;
  /** Counts every pull per principal and repository for the audit trail (pull-audit.ts); none counted without it. */
  pullAudit?: Pick<PullAudit, 'note'>;
  /** The proxy namespaces in force, whose writes are refused (the live rules); `config.proxies` when omitted. */
  proxies?: ProxyNamespaces;
  /** Which namespaces have a quota (kept current by the process): pushes no quota covers skip the check. */
  quotas?: meta.QuotaCoverage;
  /** Where pushed images' configs are read for search's labels and platforms; annotations only without it. */
  store?: BlobStore;
  /** The bus the console's live feed (`/api/v1/events`) hears; the feed answers 503 without it. */
  feed?: Pick<EventBus, 'subscribe'>;
  /** Aborted when the process shuts down: the live feed's streams end then (they never end by themselves). */
  stopping?: AbortSignal;
}

/** A manifest reference from the URL: a digest or a tag. */
type Reference = { kind: 'digest'; digest: Digest } | { kind: 'tag'; tag: string };

/**
 * Parses a reference. A malformed digest is DIGEST_INVALID. A malformed tag is TAG_INVALID when the client tries
 * to create it, and MANIFEST_UNKNOWN when it asks for it (no such tag can exist).
 */
function parseReference(reference: string, purpose: 'read' | 'write'): Reference {
  if (looksLikeDigest(reference)) return { kind: 'digest', digest: parseDigest(reference) };
  if (!isValidTag(reference)) {
    if (purpose === 'read') throw errors.manifestUnknown(reference.slice(0, 200));
    throw new OciError('TAG_INVALID', 'invalid tag', { tag: reference.slice(0, 200) });
  }
  return { kind: 'tag', tag: reference };
}

function queryList(value: unknown): string[] {
  if (value === undefined) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  throw errors.manifestInvalid('malformed query parameter');
}

function mediaTypeOf(header: string | undefined): string | undefined {
  const value = header?.split(';')[0].trim();
  return value ? value : undefined;
}

/** The manifest service's app, with a way to drop what its caches hold of a repository. */
export interface ManifestServiceApp extends HttpApp {
  /** Forgets the cached manifests and tags of a repository: called before a repository deletion is answered. */
  forgetRepository(repository: string): void;
}

/** Creates the manifest service's app: express, with the pull fast path (manifest GET/HEAD) in front. */
export function createManifestService(deps: ManifestServiceDeps): ManifestServiceApp {
  const { db, config, events } = deps;
  const base = config.http.host;
  const writes: ManifestWriteDeps = {
    db,
    events,
    reviewDelayMs: durationMs(config.gc.reviewDelay),
    quotas: deps.quotas,
    configs: deps.store ? createConfigReader(deps.store, deps.logger) : undefined,
  };
  const reader = createManifestReader({ db, config, metrics: deps.metrics });
  deps.invalidations
    ?.subscribe((event) => reader.onEvent(event))
    .catch((err: unknown) => deps.logger.error({ err }, 'the manifest caches cannot hear invalidations'));

  async function putManifest(req: Request, res: Response, match: RouteMatch): Promise<void> {
    const repository = match.repository;
    refuseProxyWrite(deps.proxies ?? config.proxies, repository);
    const reference = parseReference(match.param, 'write');
    const tags = queryList(req.query.tag);
    for (const tag of tags) if (!isValidTag(tag)) throw new OciError('TAG_INVALID', 'invalid tag', { tag: tag.slice(0, 200) });
    if (reference.kind === 'tag') tags.unshift(reference.tag);
    const body = await readBodyCapped(req, config.registry.manifestMaxBytes, 'manifest');
    const pushed = await pushManifest(writes, {
      repository,
      body,
      contentType: mediaTypeOf(req.headers['content-type']),
      expectedDigest: reference.kind === 'digest' ? reference.digest : null,
      tags,
      context: requestContext(req, config),
    });
    // Before the answer: a client that saw the push succeed must see the tags' new targets.
    for (const tag of tags) reader.forgetTag(repository, tag);
    deps.onEventsCommitted?.();
    res.status(201);
    res.setHeader('Location', locationFor(base, `/v2/${repository}/manifests/${pushed.digest}`));
    res.setHeader('Docker-Content-Digest', pushed.digest);
    if (pushed.subjectDigest) res.setHeader('OCI-Subject', pushed.subjectDigest);
    if (reference.kind === 'digest' && tags.length > 0) res.setHeader('OCI-Tag', tags);
    res.setHeader('Content-Length', '0');
    res.end();
  }

  async function deleteManifest(req: Request, res: Response, match: RouteMatch): Promise<void> {
    if (!config.registry.deleteEnabled) throw errors.unsupported('deletes are disabled on this registry');
    const repository = match.repository;
    const reference = parseReference(match.param, 'read');
    const context = requestContext(req, config);
    if (reference.kind === 'tag') await removeTag(writes, { repository, tag: reference.tag, context });
    else await removeManifest(writes, { repository, digest: reference.digest.value, context });
    // Invariant: the caches forget a deleted manifest or tag before the delete is answered.
    if (reference.kind === 'tag') reader.forgetTag(repository, reference.tag);
    else reader.forgetManifest(repository, reference.digest.value);
    deps.onEventsCommitted?.();
    res.status(202).setHeader('Content-Length', '0');
    res.end();
  }

  async function listTags(req: Request, res: Response, match: RouteMatch): Promise<void> {
    const page = parsePageRequest(req.query, config.registry.maxPageSize);
    const repo = await meta.findRepository(db, match.repository);
    if (!repo) throw errors.nameUnknown(match.repository);
    const rows = page.limit === 0 ? [] : await meta.listTags(db, repo.id, page.last, page.limit + 1);
    const tags = rows.slice(0, page.limit);
    if (rows.length > page.limit) res.setHeader('Link', nextPageLink(`/v2/${match.repository}/tags/list`, page.limit, tags[tags.length - 1]));
    sendJson(req, res, { name: match.repository, tags });
  }

  async function catalog(req: Request, res: Response): Promise<void> {
    const page = parsePageRequest(req.query, config.registry.maxPageSize);
    const rows = page.limit === 0 ? [] : await meta.listRepositories(db, page.last, page.limit + 1);
    const repositories = rows.slice(0, page.limit);
    if (rows.length > page.limit) res.setHeader('Link', nextPageLink('/v2/_catalog', page.limit, repositories[repositories.length - 1]));
    sendJson(req, res, { repositories });
  }

  async function referrers(req: Request, res: Response, match: RouteMatch): Promise<void> {
    const subject = parseDigest(match.param).value;
    const filter = typeof req.query.artifactType === 'string' && MEDIA_TYPE_GRAMMAR.test(req.query.artifactType) ? req.query.artifactType : null;
    const repo = await meta.findRepository(db, match.repository);
    const rows = repo ? await meta.listReferrers(db, repo.id, subject, filter) : [];
    if (filter) res.setHeader('OCI-Filters-Applied', 'artifactType');
    sendJson(
      req,
      res,
      {
        schemaVersion: 2,
        mediaType: MediaTypes.ociIndex,
        manifests: rows.map((r) => ({
          mediaType: r.mediaType,
          digest: r.digest,
          size: r.size,
          ...(r.artifactType ? { artifactType: r.artifactType } : {}),
          ...(r.annotations ? { annotations: r.annotations } : {}),
        })),
      },
      MediaTypes.ociIndex,
    );
  }

  /** Runs one search for the caller of `req` (see search-api.ts), a page of `request`. */
  function search(req: Request, request: SearchRequest): Promise<meta.SearchPage> {
    return meta.searchRepositories(db, {
      text: request.text,
      viewer: searchViewerOf(req, config),
      filters: request.filters,
      limit: request.pageSize,
      offset: (request.page - 1) * request.pageSize,
    });
  }

  async function dockerSearch(req: Request, res: Response): Promise<void> {
    const request = parseDockerSearch(req.query);
    sendJson(req, res, renderDockerSearch(request, await search(req, request)));
  }

  async function consoleSearch(req: Request, res: Response): Promise<void> {
    const request = parseConsoleSearch(req.query);
    sendJson(req, res, renderConsoleSearch(request, await search(req, request)));
  }

  async function listConsoleRepositories(req: Request, res: Response): Promise<void> {
    sendJson(req, res, renderConsoleRepositories(await consoleRepositories({ db, config }, req)));
  }

  async function listConsoleTags(req: Request, res: Response, match: RouteMatch): Promise<void> {
    sendJson(req, res, renderConsoleTags(match.repository, await consoleTags({ db, config }, req, match.repository)));
  }

  const feed = deps.feed ? createEventFeed({ bus: deps.feed, db, config, logger: deps.logger, stopping: deps.stopping }) : null;
  async function liveFeed(req: Request, res: Response): Promise<void> {
    if (!feed) throw new OciError('UNAVAILABLE', 'this manifest service has no event bus for the live feed');
    await feed.serve(req, res);
  }

  const notePull = deps.pulls ? deps.pulls.note.bind(deps.pulls) : undefined;
  const pullAudit = deps.pullAudit;
  const secret = config.upstreams.secret;
  /**
   * Counts a pull for the audit trail: a lookup and an increment, no I/O. A read the gateway made for several clients
   * at once counts as many pulls as it says it answers (`pullsOf`).
   */
  const auditPull: ServedListener | undefined = pullAudit ? (repository, _digest, req) => pullAudit.note(principalOf(req, secret), repository, pullsOf(req)) : undefined;
  const noteProxiedPull: ServedListener | undefined =
    notePull && auditPull
      ? (repository, digest, req) => {
          notePull(repository, digest);
          auditPull(repository, digest, req);
        }
      : (notePull ?? auditPull);

  // Namespaces whose gc policy retains by pulls (`notPulledFor`): their pulls are noted like a cache's.
  const retainedByPulls = config.gc.policies.filter((p) => p.notPulledFor !== undefined).map((p) => p.namespace.replace(/\/+$/, ''));
  const notesPulls = (repository: string) => retainedByPulls.some((ns) => ns === '' || repository === ns || repository.startsWith(`${ns}/`));

  /**
   * Manifest GET/HEAD: the reader answers, after pull-through made what a proxied repository's read names present.
   * Only pulls in proxied repositories (their content is evicted by it) and in namespaces retained by pulls
   * (`gc.policies[].notPulledFor`) are noted for their last-pulled times; the audit trail counts every pull, in memory.
   */
  function serveManifest(req: IncomingMessage, res: ServerResponse, match: RouteMatch): void | Promise<void> {
    const pullThrough = deps.pullThrough;
    if (!pullThrough?.covers(match.repository)) return reader.serve(req, res, match, notePull && notesPulls(match.repository) ? noteProxiedPull : auditPull);
    return pullThrough.prepare(match.repository, match.param, () => requestContext(req as Request, config)).then((stored) => {
      for (const tag of stored ?? []) reader.forgetTag(match.repository, tag);
      return reader.serve(req, res, match, noteProxiedPull);
    });
  }

  const app = createServiceApp(async () => {
    await meta.pingDatabase(db);
  });
  // Repository deletions the distributed admin API (the auth service) forwards on an admin's behalf.
  app.use(INTERNAL_REPOSITORY_ADMIN_PATH, adminCallGuard(config.upstreams.secret), createRepositoryAdminRouter({ ...deps, forgetRepository: reader.forgetRepository }));
  app.use(
    dispatchRoutes<'manifest'>({
      'manifest GET': async (req, res, match) => serveManifest(req, res, match),
      'manifest PUT': putManifest,
      'manifest DELETE': deleteManifest,
      'tags GET': listTags,
      'catalog GET': catalog,
      'referrers GET': referrers,
      'search GET': dockerSearch,
      'searchApi GET': consoleSearch,
      'consoleRepositories GET': listConsoleRepositories,
      'consoleTags GET': listConsoleTags,
      'events GET': liveFeed,
    }),
  );
  return Object.assign(withFastReads(finishServiceApp(app, deps.logger), ['manifest'], serveManifest, deps.logger), { forgetRepository: reader.forgetRepository });
}

function sendJson(req: Request, res: Response, body: unknown, contentType = 'application/json'): void {
  const text = Buffer.from(JSON.stringify(body));
  res.status(200);
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', String(text.length));
  if (req.method === 'HEAD') res.end();
  else res.end(text);
}
