/**
 * The console's live feed, `GET /api/v1/events`: the registry's events as Server-Sent Events, each sent only to the
 * streams whose caller may pull its repository (anonymous: the public namespaces; auth off: everyone).
 *
 * The process hears the bus once, on its first stream, in a consumer group of its own (`lading-console-feed-<uuid>`),
 * so that with Kafka every replica hears every event, not a share of them; embedded, the in-process bus. Each event
 * is written as `id:` (the event id), `event:` (its type) and `data:` (the event's JSON), after a `retry:` hint;
 * a comment every `console.heartbeat` keeps proxies from closing an idle stream. There is no replay: a stream sees
 * what happens while it is open (`Last-Event-ID` is ignored). At most `console.maxEventStreams` streams at once per
 * process; one more is answered 429. Streams end when the process shuts down (`stopping`).
 *
 * Invariant: a stream's events are written in the order the bus delivered them, whatever the time its access checks
 * take (each stream keeps one chain of writes).
 */
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { LruCache } from '@lading/cache';
import { type LadingConfig, durationMs } from '@lading/config';
import type { EventBus, LadingEvent } from '@lading/events';
import * as meta from '@lading/metadata';
import type { Database, SearchViewer } from '@lading/metadata';
import { OciError } from '@lading/oci';
import type { Logger } from '@lading/telemetry';
import { searchViewerOf } from './search-api';

/** The reconnection delay suggested to browsers (`retry:`), in milliseconds. */
export const FEED_RETRY_MS = 3000;

/**
 * How long the feed trusts an answer to "may this caller pull this repository?", shared by the streams of the same
 * caller: a grant given or taken reaches open streams within this time.
 */
const ACCESS_CACHE_MS = 30_000;

/** What the feed is built from. */
export interface EventFeedDeps {
  bus: Pick<EventBus, 'subscribe'>;
  db: Database;
  config: Pick<LadingConfig, 'auth' | 'upstreams' | 'console'>;
  logger: Logger;
  /** Aborted when the process shuts down: every stream ends, and new ones are refused with 503. */
  stopping?: AbortSignal;
  now?: () => number;
}

/** The live feed of one process. */
export interface EventFeed {
  /** Serves one stream until the client goes away. */
  serve(req: Request, res: Response): Promise<void>;
  /** How many streams are open. */
  readonly streams: number;
}

interface Stream {
  viewer: SearchViewer;
  /** The viewer as a key of the shared access answers. */
  viewerKey: string;
  res: Response;
  chain: Promise<void>;
}

/** Creates the live feed; it subscribes to the bus on its first stream. */
export function createEventFeed(deps: EventFeedDeps): EventFeed {
  const now = deps.now ?? Date.now;
  const streams = new Set<Stream>();
  const heartbeatMs = durationMs(deps.config.console.heartbeat);
  let subscribed: Promise<unknown> | null = null;
  // Caller and repository → whether it may pull: one query per pair however many of its streams are open (the
  // promise is kept, so streams asking at once share one query).
  const access = new LruCache<string, Promise<boolean>>({ maxEntries: 10_000, ttlMs: ACCESS_CACHE_MS, now });

  function mayPull(stream: Stream, repository: string): Promise<boolean> {
    const key = `${stream.viewerKey}\n${repository}`;
    let answer = access.get(key);
    if (!answer) {
      answer = meta.pullableRepositories(deps.db, stream.viewer, [repository]).then((names) => names.has(repository));
      answer.catch(() => access.delete(key));
      access.set(key, answer);
    }
    return answer;
  }

  function deliver(event: LadingEvent): void {
    const repository = event.partitionkey;
    const frame = `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
    for (const stream of streams) {
      stream.chain = stream.chain
        .then(async () => {
          if (streams.has(stream) && (await mayPull(stream, repository))) stream.res.write(frame);
        })
        .catch((err: unknown) => deps.logger.warn({ err, event: event.id }, 'live feed: an event could not be checked or sent'));
    }
  }

  function subscribe(): Promise<unknown> {
    subscribed ??= deps.bus.subscribe((event) => deliver(event), { group: `lading-console-feed-${randomUUID()}`, fromBeginning: false }).catch((err: unknown) => {
      subscribed = null;
      throw err;
    });
    return subscribed;
  }

  return {
    get streams() {
      return streams.size;
    },
    async serve(req, res) {
      if (deps.stopping?.aborted) throw new OciError('UNAVAILABLE', 'the server is shutting down');
      if (streams.size >= deps.config.console.maxEventStreams) {
        throw new OciError('TOOMANYREQUESTS', 'too many live feed streams are open on this server; try again later', undefined, { headers: { 'Retry-After': '10' } });
      }
      const viewer = searchViewerOf(req, deps.config);
      const viewerKey = viewer.kind === 'everyone' ? '*' : `${viewer.type ?? ''}:${viewer.name ?? ''}`;
      const stream: Stream = { viewer, viewerKey, res, chain: Promise.resolve() };
      streams.add(stream);
      try {
        await subscribe();
      } catch (err) {
        streams.delete(stream);
        deps.logger.error({ err }, 'live feed: cannot subscribe to the event bus');
        throw new OciError('UNAVAILABLE', 'the live feed cannot hear the event bus');
      }
      res.status(200);
      res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
      res.setHeader('Cache-Control', 'no-cache, no-transform');
      res.setHeader('X-Accel-Buffering', 'no');
      // A stream's connection is not reused: once it ends (the client left, the server shuts down), it closes.
      res.setHeader('Connection', 'close');
      res.flushHeaders();
      res.write(`retry: ${FEED_RETRY_MS}\n\n`);
      const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
      heartbeat.unref();
      await new Promise<void>((resolve) => {
        const end = () => {
          clearInterval(heartbeat);
          streams.delete(stream);
          deps.stopping?.removeEventListener('abort', end);
          resolve();
        };
        res.on('close', end);
        req.on('aborted', end);
        if (deps.stopping?.aborted) end();
        else deps.stopping?.addEventListener('abort', end, { once: true });
      });
      if (!res.writableEnded) res.end();
    },
  };
}
