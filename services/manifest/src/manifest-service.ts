/**
 * The manifest service: manifests (OCI and Docker, images and indexes, artifacts), tags, the referrers API and
 * the catalog. Every change writes its events to the outbox and its unlinks to the GC review queues in the same
 * transaction.
 */
import type { Request, Response } from 'express';
import { durationMs } from '@lading/config';
import { EVENT_TYPES, EventBus, EventContext, appendEvent } from '@lading/events';
import {
  HttpApp,
  createServiceApp,
  dispatchRoutes,
  finishServiceApp,
  locationFor,
  nextPageLink,
  parsePageRequest,
  readBodyCapped,
  requestContext,
  withFastReads,
} from '@lading/http';
import * as meta from '@lading/metadata';
import type { SqlExecutor } from '@lading/metadata';
import {
  Digest,
  MEDIA_TYPE_GRAMMAR,
  MediaTypes,
  OciError,
  RouteMatch,
  digestOf,
  errors,
  isValidTag,
  looksLikeDigest,
  parseDigest,
  validateManifest,
} from '@lading/oci';
import { SPAN_NAMES, withSpan } from '@lading/telemetry';
import type { ServiceDeps } from '@lading/runtime';
import { createManifestReader } from './manifest-reader';

/** What the manifest service is built from. */
export interface ManifestServiceDeps extends ServiceDeps {
  /**
   * Where deletes and tag moves made by others (the garbage collector, other replicas) are heard, to drop cached
   * answers; the process's bus. Optional: with a shared database the caches never need it to stay correct.
   */
  invalidations?: Pick<EventBus, 'subscribe'>;
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

/** Creates the manifest service's app: express, with the pull fast path (manifest GET/HEAD) in front. */
export function createManifestService(deps: ManifestServiceDeps): HttpApp {
  const { db, config, events } = deps;
  const base = config.http.host;
  const reviewDelayMs = durationMs(config.gc.reviewDelay);
  const reader = createManifestReader({ db, config, metrics: deps.metrics });
  deps.invalidations
    ?.subscribe((event) => reader.onEvent(event))
    .catch((err: unknown) => deps.logger.error({ err }, 'the manifest caches cannot hear invalidations'));

  async function emitTagUpdate(tx: SqlExecutor, ctx: EventContext, repository: string, repositoryId: number, tag: string, manifest: { digest: string; mediaType: string; size: number }): Promise<void> {
    const { previousDigest, changed } = await meta.upsertTag(tx, repositoryId, tag, manifest.digest);
    if (!changed) return;
    await appendEvent(tx, events, {
      type: EVENT_TYPES.tagUpdated,
      repository,
      subject: `${repository}:${tag}`,
      context: ctx,
      data: { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.size, tag, previousDigest },
    });
    if (previousDigest) await meta.queueManifestReview(tx, repositoryId, [previousDigest], 'tag moved', reviewDelayMs);
  }

  async function putManifest(req: Request, res: Response, match: RouteMatch): Promise<void> {
    const repository = match.repository;
    const reference = parseReference(match.param, 'write');
    const tags = queryList(req.query.tag);
    for (const tag of tags) if (!isValidTag(tag)) throw new OciError('TAG_INVALID', 'invalid tag', { tag: tag.slice(0, 200) });
    if (reference.kind === 'tag') tags.unshift(reference.tag);
    const body = await readBodyCapped(req, config.registry.manifestMaxBytes, 'manifest');
    const manifest = await withSpan(SPAN_NAMES.manifestValidate, { 'lading.manifest.bytes': body.length }, () => validateManifest(body, mediaTypeOf(req.headers['content-type'])));
    const algorithm = reference.kind === 'digest' ? reference.digest.algorithm : 'sha256';
    const digest = digestOf(body, algorithm);
    if (reference.kind === 'digest' && reference.digest.value !== digest) {
      throw errors.digestInvalid('manifest digest does not match the reference', { expected: reference.digest.value, actual: digest });
    }
    const ctx = requestContext(req, config);
    const blobDigests = manifest.references.filter((r) => r.kind === 'blob').map((r) => r.descriptor.digest);
    const requiredBlobs = manifest.references.filter((r) => r.kind === 'blob' && r.mustExist).map((r) => r.descriptor.digest);
    const childDigests = manifest.references.filter((r) => r.kind === 'manifest').map((r) => r.descriptor.digest);
    const summary = { digest, mediaType: manifest.mediaType, size: body.length };

    await db.transaction(async (tx) => {
      const repo = await meta.ensureRepository(tx, repository);
      const missingBlobs = await meta.missingRepositoryBlobs(tx, repo.id, requiredBlobs);
      if (missingBlobs.length > 0) throw errors.manifestBlobUnknown(missingBlobs[0]);
      const missingChildren = await meta.missingManifests(tx, repo.id, childDigests);
      if (missingChildren.length > 0) throw errors.manifestBlobUnknown(missingChildren[0]);
      // The required blobs are locked (FOR SHARE) by missingRepositoryBlobs, so that the garbage collector cannot
      // delete them under this manifest, and linked (so present: a link references its blob). The others, foreign
      // layers referenced by URL, are locked too if the registry happens to hold them.
      const optionalBlobs = blobDigests.filter((d) => !requiredBlobs.includes(d));
      if (optionalBlobs.length > 0) await tx.query(`SELECT digest FROM blobs WHERE digest = ANY($1::text[]) FOR SHARE`, [optionalBlobs]);
      if (repo.created) await appendEvent(tx, events, { type: EVENT_TYPES.repositoryCreated, repository, subject: repository, context: ctx });
      const inserted = await meta.insertManifest(tx, {
        repositoryId: repo.id,
        digest,
        mediaType: manifest.mediaType,
        artifactType: manifest.artifactType,
        payload: body,
        subjectDigest: manifest.subject?.digest ?? null,
        annotations: manifest.annotations,
        // Foreign layers are referenced by URL, not held: only blobs the registry has are linked.
        blobDigests: blobDigests.filter((d) => requiredBlobs.includes(d)),
        childDigests,
      });
      if (inserted) {
        await appendEvent(tx, events, {
          type: EVENT_TYPES.manifestPushed,
          repository,
          subject: `${repository}@${digest}`,
          context: ctx,
          data: {
            ...summary,
            artifactType: manifest.artifactType,
            tag: tags[0] ?? null,
            references: manifest.references.map((r) => ({ mediaType: r.descriptor.mediaType, digest: r.descriptor.digest, size: r.descriptor.size })),
            subject: manifest.subject ? { mediaType: manifest.subject.mediaType, digest: manifest.subject.digest, size: manifest.subject.size } : null,
          },
        });
        if (manifest.subject) {
          await appendEvent(tx, events, {
            type: EVENT_TYPES.referrerAttached,
            repository,
            subject: `${repository}@${manifest.subject.digest}`,
            context: ctx,
            data: { ...summary, artifactType: manifest.artifactType, subject: { mediaType: manifest.subject.mediaType, digest: manifest.subject.digest, size: manifest.subject.size } },
          });
        }
        if (tags.length === 0) await meta.queueManifestReview(tx, repo.id, [digest], 'pushed untagged', reviewDelayMs);
      }
      for (const tag of tags) await emitTagUpdate(tx, ctx, repository, repo.id, tag, summary);
    });
    // Before the answer: a client that saw the push succeed must see the tags' new targets.
    for (const tag of tags) reader.forgetTag(repository, tag);
    deps.onEventsCommitted?.();
    res.status(201);
    res.setHeader('Location', locationFor(base, `/v2/${repository}/manifests/${digest}`));
    res.setHeader('Docker-Content-Digest', digest);
    if (manifest.subject) res.setHeader('OCI-Subject', manifest.subject.digest);
    if (reference.kind === 'digest' && tags.length > 0) res.setHeader('OCI-Tag', tags);
    res.setHeader('Content-Length', '0');
    res.end();
  }

  async function deleteManifest(req: Request, res: Response, match: RouteMatch): Promise<void> {
    if (!config.registry.deleteEnabled) throw errors.unsupported('deletes are disabled on this registry');
    const repository = match.repository;
    const reference = parseReference(match.param, 'read');
    const ctx = requestContext(req, config);
    await db.transaction(async (tx) => {
      const repo = await meta.findRepository(tx, repository);
      if (!repo) throw errors.manifestUnknown(match.param);
      if (reference.kind === 'tag') {
        const digest = await meta.deleteTag(tx, repo.id, reference.tag);
        if (!digest) throw errors.manifestUnknown(reference.tag);
        await appendEvent(tx, events, { type: EVENT_TYPES.tagDeleted, repository, subject: `${repository}:${reference.tag}`, context: ctx, data: { tag: reference.tag, digest } });
        await meta.queueManifestReview(tx, repo.id, [digest], 'tag deleted', reviewDelayMs);
        return;
      }
      const deleted = await meta.deleteManifest(tx, repo.id, reference.digest.value);
      if (!deleted) throw errors.manifestUnknown(reference.digest.value);
      for (const tag of deleted.tags) {
        await appendEvent(tx, events, { type: EVENT_TYPES.tagDeleted, repository, subject: `${repository}:${tag}`, context: ctx, data: { tag, digest: deleted.digest } });
      }
      await appendEvent(tx, events, {
        type: EVENT_TYPES.manifestDeleted,
        repository,
        subject: `${repository}@${deleted.digest}`,
        context: ctx,
        data: { digest: deleted.digest, mediaType: deleted.mediaType, size: deleted.size },
      });
      await meta.queueBlobReview(tx, deleted.blobDigests, 'manifest deleted', reviewDelayMs);
      await meta.queueManifestReview(tx, repo.id, deleted.childDigests, 'parent index deleted', reviewDelayMs);
    });
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

  const app = createServiceApp(async () => {
    await db.query('SELECT 1');
  });
  app.use(
    dispatchRoutes<'manifest'>({
      'manifest GET': async (req, res, match) => reader.serve(req, res, match),
      'manifest PUT': putManifest,
      'manifest DELETE': deleteManifest,
      'tags GET': listTags,
      'catalog GET': catalog,
      'referrers GET': referrers,
    }),
  );
  return withFastReads(finishServiceApp(app, deps.logger), ['manifest'], reader.serve, deps.logger);
}

function sendJson(req: Request, res: Response, body: unknown, contentType = 'application/json'): void {
  const text = Buffer.from(JSON.stringify(body));
  res.status(200);
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', String(text.length));
  if (req.method === 'HEAD') res.end();
  else res.end(text);
}
