/**
 * Webhook signatures in the Standard Webhooks scheme: every delivery carries `webhook-id` (the event id, the same on
 * every retry), `webhook-timestamp` (this attempt, unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
 * "id.timestamp.body">`, keyed by the subscription secret's decoded bytes. The timestamp is inside the signed text,
 * so a receiver that checks it against its clock refuses a captured request replayed later.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The prefix of a webhook secret; the rest is the base64 of the signing key. */
export const WEBHOOK_SECRET_PREFIX = 'whsec_';

/** How far a `webhook-timestamp` may be from the receiver's clock by default (Standard Webhooks suggests 5 minutes). */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** The three headers a signed delivery carries. */
export interface WebhookSignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/** Creates a new secret: `whsec_` and the base64 of 32 random bytes. */
export function generateWebhookSecret(random: (n: number) => Buffer = randomBytes): string {
  return `${WEBHOOK_SECRET_PREFIX}${random(32).toString('base64')}`;
}

/** The signing key a secret stands for: its base64 part decoded (a secret without the prefix is accepted too). */
export function webhookSigningKey(secret: string): Buffer {
  const encoded = secret.startsWith(WEBHOOK_SECRET_PREFIX) ? secret.slice(WEBHOOK_SECRET_PREFIX.length) : secret;
  const key = Buffer.from(encoded, 'base64');
  if (key.length === 0) throw new Error('webhook secret is empty');
  return key;
}

function signatureOf(key: Buffer, id: string, timestamp: string, body: string | Buffer): string {
  const hmac = createHmac('sha256', key);
  hmac.update(`${id}.${timestamp}.`);
  hmac.update(body);
  return hmac.digest('base64');
}

/** Signs one delivery attempt; returns the headers to send with `body` (exactly the bytes sent). */
export function signWebhook(secret: string, id: string, timestampSeconds: number, body: string | Buffer): WebhookSignatureHeaders {
  const timestamp = String(Math.floor(timestampSeconds));
  return {
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': `v1,${signatureOf(webhookSigningKey(secret), id, timestamp, body)}`,
  };
}

/** Options of `verifyWebhook`. */
export interface VerifyWebhookOptions {
  /** How far the timestamp may be from `now`, either way, in seconds. */
  toleranceSeconds?: number;
  /** The receiver's clock, in milliseconds since the epoch. */
  now?: () => number;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const direct = headers[name] ?? Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  return Array.isArray(direct) ? direct[0] : direct;
}

/**
 * Verifies a received delivery: true when one of the `v1,` signatures in `webhook-signature` (space-separated, so a
 * receiver keeps working while a secret rotates) matches the body under `secret`, and `webhook-timestamp` is within
 * the tolerance of the receiver's clock. Pass the raw body bytes, not re-serialised JSON. Never throws on bad input.
 */
export function verifyWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string | Buffer,
  options: VerifyWebhookOptions = {},
): boolean {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures || !/^\d{1,12}$/.test(timestamp)) return false;
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((options.now ?? Date.now)() / 1000);
  if (Math.abs(nowSeconds - Number(timestamp)) > tolerance) return false;
  let key: Buffer;
  try {
    key = webhookSigningKey(secret);
  } catch {
    return false;
  }
  const expected = Buffer.from(signatureOf(key, id, timestamp, body), 'base64');
  return signatures.split(' ').some((candidate) => {
    const [version, value] = candidate.split(',', 2);
    if (version !== 'v1' || !value) return false;
    const given = Buffer.from(value, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
