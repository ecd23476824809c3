/**
 * The bodies of deliveries, rendered from the event as the bus carried it:
 * - `cloudevents`: the event itself, structured-mode CloudEvents JSON (`application/cloudevents+json`), byte for
 *   byte the record on Kafka;
 * - `distribution`: CNCF Distribution's notification envelope (`application/vnd.docker.distribution.events.v2+json`,
 *   `{"events":[...]}`), so that consumers written for Distribution work unchanged.
 *
 * Lading types map to Distribution actions as follows (see docs/webhooks.md): manifest.pushed → push (carrying the
 * tag of a push by tag), tag.updated → push with the tag (unless its manifest.pushed already carried it: the
 * enqueuer skips it then), blob.uploaded → push, blob.mounted → mount, manifest.deleted / blob.deleted → delete with
 * repository + digest, tag.deleted → delete with repository + tag, repository.deleted → delete with the repository,
 * manifest.pulled → pull. repository.created and referrer.attached have no Distribution form and are not sent.
 */
import { EVENT_TYPES } from '@lading/events';
import type { WebhookFormat } from '@lading/webhooks';

/** Content types of the two formats. */
export const CONTENT_TYPES: Record<WebhookFormat, string> = {
  cloudevents: 'application/cloudevents+json',
  distribution: 'application/vnd.docker.distribution.events.v2+json',
};

/** A Distribution notification action. */
export type DistributionAction = 'push' | 'pull' | 'mount' | 'delete';

const types = EVENT_TYPES as Record<string, string>;

/** Distribution's action for a Lading event type; null when Distribution has no such event. */
export function distributionAction(eventType: string): DistributionAction | null {
  switch (eventType) {
    case types.manifestPushed:
    case types.tagUpdated:
    case types.blobUploaded:
      return 'push';
    case types.blobMounted:
      return 'mount';
    case types.manifestDeleted:
    case types.tagDeleted:
    case types.blobDeleted:
    case types.repositoryDeleted ?? 'io.lading.repository.deleted':
      return 'delete';
    case types.manifestPulled ?? 'io.lading.manifest.pulled':
      return 'pull';
    default:
      return null;
  }
}

/** Where the rendering takes the registry's own address from. */
export interface RenderContext {
  /** The registry's external base URL (`http.host`), for `target.url`; relative URLs without it. */
  baseUrl?: string;
}

/** The parts of an event the Distribution rendering reads. */
export interface EventShape {
  id: string;
  type: string;
  source?: string;
  time?: string;
  data?: {
    repository?: string;
    digest?: string | null;
    mediaType?: string | null;
    size?: number | null;
    tag?: string | null;
    references?: Array<{ mediaType: string; digest: string; size: number }>;
    fromRepository?: string | null;
    actor?: { name: string | null } | null;
    request?: { id: string; addr: string; method: string; useragent: string } | null;
  };
}

function hostOf(source: string | undefined): string {
  const m = /^\/\/([^/]+)/.exec(source ?? '');
  return m ? m[1] : '';
}

/** One event in Distribution's notification format; null for events Distribution does not have. */
export function toDistributionEvent(event: EventShape, ctx: RenderContext): Record<string, unknown> | null {
  const action = distributionAction(event.type);
  if (!action) return null;
  const d = event.data ?? {};
  const repository = d.repository ?? '';
  const base = (ctx.baseUrl ?? '').replace(/\/$/, '');
  const isBlob = event.type === types.blobUploaded || event.type === types.blobMounted || event.type === types.blobDeleted;
  let target: Record<string, unknown>;
  if (action === 'delete') {
    // Deletes carry only what Distribution sends: the repository and the digest, or the tag.
    target = { repository };
    if (event.type === types.tagDeleted) target.tag = d.tag;
    else if (d.digest) target.digest = d.digest;
  } else {
    target = {
      mediaType: d.mediaType ?? (isBlob ? 'application/octet-stream' : undefined),
      digest: d.digest,
      size: d.size,
      length: d.size,
      repository,
      url: `${base}/v2/${repository}/${isBlob ? 'blobs' : 'manifests'}/${d.digest}`,
    };
    if (d.tag) target.tag = d.tag;
    if (!isBlob && d.references && d.references.length > 0) {
      target.references = d.references.map((r) => ({ mediaType: r.mediaType, digest: r.digest, size: r.size }));
    }
    if (action === 'mount' && d.fromRepository) target.fromRepository = d.fromRepository;
  }
  const host = hostOf(event.source);
  return {
    id: event.id,
    timestamp: event.time,
    action,
    target,
    request: d.request
      ? { id: d.request.id, addr: d.request.addr, host: ctx.baseUrl ? new URL(ctx.baseUrl).host : host, method: d.request.method, useragent: d.request.useragent }
      : {},
    actor: d.actor?.name ? { name: d.actor.name } : {},
    source: { addr: host, instanceID: event.source ?? '' },
  };
}

/** A rendered body. */
export interface RenderedBody {
  contentType: string;
  body: string;
}

/**
 * Renders the body of a delivery in a subscription's format from the event's JSON as the bus carried it (a
 * CloudEvents body is that JSON unchanged; a ping in Distribution form is an empty envelope).
 */
export function renderDelivery(format: WebhookFormat, eventJson: string, ctx: RenderContext): RenderedBody {
  if (format === 'cloudevents') return { contentType: CONTENT_TYPES.cloudevents, body: eventJson };
  const rendered = toDistributionEvent(JSON.parse(eventJson) as EventShape, ctx);
  return { contentType: CONTENT_TYPES.distribution, body: JSON.stringify({ events: rendered ? [rendered] : [] }) };
}
