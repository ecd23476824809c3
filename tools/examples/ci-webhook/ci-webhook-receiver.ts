/**
 * A CI trigger behind a Lading webhook subscription, small enough to copy into a CI system: it verifies each
 * delivery's Standard Webhooks signature (with the subscription's secret, refusing stale timestamps), remembers
 * delivery ids so that a retried or replayed delivery runs nothing twice, and for every tag push that matches a
 * rule runs the rule's command with the pushed image's reference in its environment:
 *
 *   IMAGE=<registry-host>/<repository>@<digest>   IMAGE_REPOSITORY  IMAGE_TAG  IMAGE_DIGEST  LADING_EVENT_ID
 *
 * Answers: 202 a command was started, 200 nothing to do (ignored, or a delivery already seen), 401 a bad signature
 * or a stale timestamp (nothing runs), 400 a signed body that is not JSON, 405 not a POST, 413 a body over 1 MiB.
 */
import { spawn } from 'node:child_process';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { verifyWebhook } from '@lading/webhooks';
import { TagPush, globPattern, tagPushesOf } from './push-triggers';

/** Largest delivery body accepted (an event is a few KiB). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** When a tag push of a repository matching `repository` with a tag matching `tag` arrives, run `command`. */
export interface TriggerRule {
  /** A glob over repository names, e.g. `team/*` or `**`. */
  repository: string;
  /** A glob over tags, e.g. `v*`; `*` for any tag. */
  tag: string;
  /** The program and its arguments (run without a shell, so no tag or name is ever interpreted by one). */
  command: string[];
}

/** A command started for a tag push. */
export interface Job {
  push: TagPush;
  image: string;
  command: string[];
  /** The command's exit code (null when it was killed by a signal or could not start). */
  exitCode: Promise<number | null>;
}

/** Starts a command with the given extra environment. */
export type CommandRunner = (command: string[], env: Record<string, string>) => Promise<number | null>;

/** Remembers delivery ids: `claim` answers true for an id seen for the first time. */
export interface DeliveryIdStore {
  claim(id: string): boolean;
}

/** Settings of the receiver. */
export interface CiWebhookOptions {
  /**
   * The subscription's secret (`whsec_...`), as the admin API showed it at creation; during a rotation, the old and
   * the new one (a delivery signed with either is accepted).
   */
  secret: string | string[];
  rules: TriggerRule[];
  /** The registry's address as CI pulls from it (`registry.example.com`, `127.0.0.1:5000`). */
  registryHost: string;
  /** How far a delivery's timestamp may be from this clock, in seconds. */
  toleranceSeconds?: number;
  now?: () => number;
  run?: CommandRunner;
  ids?: DeliveryIdStore;
  /** Called for each job started (logging, tests). */
  onJob?: (job: Job) => void;
}

/** The receiver: an HTTP handler, and a way to wait for the commands it started. */
export interface CiWebhookReceiver {
  handler: RequestListener;
  /** Resolves when every command started so far has finished. */
  idle(): Promise<void>;
}

/**
 * Delivery ids remembered in memory for `retentionMs` (default 48 h: longer than a subscription retries, so a
 * late retry of a delivery that was already handled is still recognised). A CI system that restarts often should
 * keep them in its database instead.
 */
export function createMemoryIdStore(retentionMs = 48 * 3600_000, now: () => number = Date.now): DeliveryIdStore {
  const seen = new Map<string, number>();
  return {
    claim(id) {
      const t = now();
      for (const [key, at] of seen) {
        if (t - at <= retentionMs) break;
        seen.delete(key);
      }
      if (seen.has(id)) return false;
      seen.set(id, t);
      return true;
    },
  };
}

/** Runs a command as a child process with the image's variables added to this process's environment. */
export const spawnCommand: CommandRunner = (command, env) =>
  new Promise((resolve) => {
    const child = spawn(command[0], command.slice(1), { env: { ...process.env, ...env }, stdio: 'inherit' });
    child.once('error', () => resolve(null));
    child.once('exit', (code) => resolve(code));
  });

function answer(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Reads the raw body (the signature covers these exact bytes); null when it is larger than the limit. */
async function readBody(req: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Creates the receiver. */
export function createCiWebhookReceiver(options: CiWebhookOptions): CiWebhookReceiver {
  const rules = options.rules.map((rule) => ({ ...rule, repositoryPattern: globPattern(rule.repository), tagPattern: globPattern(rule.tag) }));
  const run = options.run ?? spawnCommand;
  const ids = options.ids ?? createMemoryIdStore(undefined, options.now);
  const running = new Set<Promise<unknown>>();
  const secrets = Array.isArray(options.secret) ? options.secret : [options.secret];

  function start(push: TagPush, command: string[]): Job {
    const image = `${options.registryHost}/${push.repository}@${push.digest}`;
    const exitCode = run(command, {
      IMAGE: image,
      IMAGE_REPOSITORY: push.repository,
      IMAGE_TAG: push.tag,
      IMAGE_DIGEST: push.digest,
      LADING_EVENT_ID: push.eventId,
    });
    const tracked = exitCode.finally(() => running.delete(tracked));
    running.add(tracked);
    const job = { push, image, command, exitCode };
    options.onJob?.(job);
    return job;
  }

  const handler: RequestListener = (req, res) => {
    void (async () => {
      if (req.method !== 'POST') return answer(res, 405, { error: 'deliveries are POSTed' });
      const body = await readBody(req);
      if (!body) return answer(res, 413, { error: `the body is larger than ${MAX_BODY_BYTES} bytes` });
      const verified = secrets.some((secret) => verifyWebhook(secret, req.headers, body, { toleranceSeconds: options.toleranceSeconds, now: options.now }));
      if (!verified) return answer(res, 401, { error: 'the signature does not verify, or its timestamp is too far from this clock' });
      // Only a verified id is remembered: an unsigned request must not be able to block a genuine delivery.
      if (!ids.claim(req.headers['webhook-id'] as string)) return answer(res, 200, { status: 'duplicate' });
      let pushes: TagPush[];
      try {
        pushes = tagPushesOf(body.toString('utf8'));
      } catch {
        return answer(res, 400, { error: 'the body is not JSON' });
      }
      const jobs = pushes.flatMap((push) =>
        rules.filter((rule) => rule.repositoryPattern.test(push.repository) && rule.tagPattern.test(push.tag)).map((rule) => start(push, rule.command)),
      );
      if (jobs.length === 0) return answer(res, 200, { status: 'ignored' });
      answer(res, 202, { status: 'triggered', images: jobs.map((j) => j.image) });
    })().catch(() => {
      if (!res.headersSent) answer(res, 500, { error: 'the receiver failed' });
      else res.destroy();
    });
  };

  return {
    handler,
    async idle() {
      while (running.size > 0) await Promise.allSettled([...running]);
    },
  };
}
