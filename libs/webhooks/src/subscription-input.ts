/**
 * Validation of what an admin sends to create or change a subscription. Every problem is a 400 in the OCI error
 * envelope naming the field; a URL must be http or https, without credentials, and must not resolve to an address
 * the SSRF guard refuses (unless the allow-list names it).
 */
import { EVENT_TYPES } from '@lading/events';
import { OciError, isValidRepositoryName } from '@lading/oci';
import { AllowList, RefusedTargetError, Resolver, checkTarget } from './address-guard';
import { WEBHOOK_FORMATS, WebhookFormat } from './webhook-store';

/** A 400 in the admin API's style. */
export function invalidInput(message: string, detail?: unknown): OciError {
  return new OciError('UNSUPPORTED', message, detail, { status: 400 });
}

const MAX_URL_LENGTH = 2048;
const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$/;

/** Every event type a subscription may filter on. */
export function knownEventTypes(): string[] {
  return Object.values(EVENT_TYPES);
}

/** Checks a subscription URL's form and its target; resolves with the normalised URL. */
export async function validateSubscriptionUrl(value: unknown, allowList: AllowList, resolver: Resolver): Promise<string> {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_URL_LENGTH) throw invalidInput('url is missing or invalid');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalidInput('url is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidInput('url must be http or https');
  if (url.username || url.password) throw invalidInput('url must not carry credentials');
  if (!url.hostname) throw invalidInput('url has no host');
  if (url.hash) throw invalidInput('url must not have a fragment');
  try {
    await checkTarget(allowList, resolver, url);
  } catch (err) {
    if (err instanceof RefusedTargetError) throw invalidInput(`url refused: ${err.message}`);
    throw err;
  }
  return url.toString();
}

/** Checks a subscription name. */
export function validateName(value: unknown): string {
  if (typeof value !== 'string' || !NAME.test(value)) throw invalidInput('name is missing or invalid (1-100 letters, digits, spaces, . _ -)');
  return value;
}

/** Checks a namespace: '' (every repository) or a repository-name prefix. */
export function validateNamespace(value: unknown): string {
  if (value === undefined || value === null || value === '') return '';
  if (typeof value !== 'string' || !isValidRepositoryName(value)) throw invalidInput('namespace must be empty or a valid repository name prefix');
  return value;
}

/** Checks a format. */
export function validateFormat(value: unknown): WebhookFormat {
  if (value === undefined || value === null) return 'cloudevents';
  if (typeof value !== 'string' || !(WEBHOOK_FORMATS as readonly string[]).includes(value)) throw invalidInput(`format must be one of ${WEBHOOK_FORMATS.join(', ')}`);
  return value as WebhookFormat;
}

/** Checks an event-type filter: known types (`io.lading.manifest.pushed`, or the short `manifest.pushed`); empty is every type. */
export function validateEventTypes(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.length > 64) throw invalidInput('eventTypes must be an array of event types');
  const known = knownEventTypes();
  const out: string[] = [];
  for (const item of value) {
    const full = typeof item === 'string' && !item.startsWith('io.lading.') ? `io.lading.${item}` : item;
    if (typeof full !== 'string' || !known.includes(full)) throw invalidInput(`unknown event type ${JSON.stringify(item)?.slice(0, 100)}`, { known });
    if (!out.includes(full)) out.push(full);
  }
  return out;
}

/** Checks a boolean field. */
export function validateBoolean(value: unknown, field: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidInput(`${field} must be true or false`);
  return value;
}
