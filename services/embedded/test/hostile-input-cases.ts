/**
 * What the hostile-input property test throws, and where: hostile strings (fast-check arbitraries), the registry's
 * routes derived from the route table (`ROUTES`) and the admin API's routes read off its express router, and how a
 * hostile value is written into a path segment, a query parameter or a JSON body.
 */
import fc from 'fast-check';
import { ROUTES, RouteSpec } from '@lading/oci';

/** Pieces no name, tag, digest or id may hold, and that broke registries before: each hostile on its own. */
export const HOSTILE_ATOMS = [
  '\u0000',
  '\ud800',
  '\udfff',
  '\r\n',
  '\n',
  '\t',
  '"',
  "'",
  '\\',
  '\u200f', // right-to-left mark
  '\u202e', // right-to-left override
  '\ufeff',
  '..',
  '../',
  '/..',
  '%',
  '%00',
  '%FF',
  '%ZZ',
  '%2F',
  '%2e%2e',
  '%E2%82%AC',
  '%ED%A0%80', // a surrogate, percent-encoded as (invalid) UTF-8
  '\u20ac',
  '\u{1F600}',
  ' ',
  '<script>',
  '${x}',
  '?',
  '#',
  '&',
  '=',
  ';',
  ',',
  ':',
  '*',
] as const;

/** A 64 KiB value. */
const LONG = fc.constantFrom('a'.repeat(64 * 1024), '\u0000'.repeat(64 * 1024), '\u20ac'.repeat(22 * 1024), '%'.repeat(64 * 1024));

/** The pieces that broke this registry before (issue 18) come up more often than the rest. */
const KNOWN_KILLERS = ['\u0000', '%00', '\ud800', '\udfff', '%FF', '"', '\u20ac', '\r\n'] as const;
const atom = fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...KNOWN_KILLERS) }, { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_ATOMS) });

/**
 * A hostile string: it starts with a hostile atom (so that it is never a valid name, tag, digest or id: a request
 * whose repository is one is refused, whatever else it says), alone, or followed by printable ASCII and maybe
 * another atom, or by a mix of atoms and any code points; or a 64 KiB value.
 */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: atom },
  { weight: 4, arbitrary: fc.tuple(atom, fc.string({ maxLength: 8 }), fc.option(atom)).map(([a, text, b]) => `${a}${text}${b ?? ''}`) },
  { weight: 3, arbitrary: fc.tuple(atom, fc.array(fc.oneof(atom, fc.string({ unit: 'binary', maxLength: 8 })), { maxLength: 4 })).map(([first, rest]) => first + rest.join('')) },
  { weight: 1, arbitrary: LONG },
);

/** A hostile JSON value for a body field: mostly a hostile string, sometimes a number or structure a field does not expect. */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 8, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(1e308, -1, 1.5, 0, -0, Number.MAX_SAFE_INTEGER + 2, true, null, [], {}) },
  { weight: 1, arbitrary: fc.array(hostileString, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(hostileString, hostileString, { maxKeys: 3 }) },
);

/**
 * Writes `value` into a URL as bytes a client can send. `percent: 'raw'` leaves `%` as it is (so `%FF`, `%ZZ` and a
 * lone `%` reach the server as invalid or surprising percent-encoding), `'encoded'` encodes it too. Unpaired
 * surrogates become their WTF-8 bytes (invalid UTF-8), since UTF-8 has none.
 */
export function urlComponent(value: string, percent: 'raw' | 'encoded'): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (ch === '%' && percent === 'raw') out += ch;
    else if (/^[A-Za-z0-9._~-]$/.test(ch)) out += ch;
    else if (code >= 0xd800 && code <= 0xdfff) out += `%${(0xe0 | (code >> 12)).toString(16)}%${(0x80 | ((code >> 6) & 0x3f)).toString(16)}%${(0x80 | (code & 0x3f)).toString(16)}`.toUpperCase();
    else for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).padStart(2, '0').toUpperCase()}`;
  }
  return out;
}

/** One route of the registry's public door: a path template with `{repository}` and `{param}`, and a method. */
export interface DoorRoute {
  name: RouteSpec['name'];
  method: string;
  /** E.g. `/v2/{repository}/manifests/{param}` or `/v2/_catalog`. */
  template: string;
}

/** The path template of a route, read off its pattern in the route table. */
export function templateOf(route: RouteSpec): string {
  const body = route.pattern.source
    .replace(/^\^/, '')
    .replace(/\$$/, '')
    .replace('([^/]+)', '{param}')
    .replace('(.+)', '{repository}')
    .replace('(?:\\/.*)?', '')
    .replace(/\\\/\?/g, '/')
    .replace(/\\(.)/g, '$1');
  return route.hasRepository ? `/v2/{repository}/${body}` : body;
}

/**
 * Every route and method of the route table except the admin API's catch-all (its routes are listed apart) and the
 * console's live feed: a stream that answers 200 and never ends, so it has no whole answer to check (its refusals
 * and filtering are proved in console-api.spec.ts).
 */
export function doorRoutes(): DoorRoute[] {
  return ROUTES.filter((r) => r.name !== 'admin' && r.name !== 'events').flatMap((r) => r.methods.map((method) => ({ name: r.name, method, template: templateOf(r) })));
}

/** The JSON fields the admin API's handlers read (users, tokens, robots, namespaces, grants, webhooks). */
export const ADMIN_BODY_FIELDS = ['name', 'password', 'admin', 'expiresIn', 'prefix', 'public', 'principal', 'role', 'url', 'events', 'format', 'secret', 'repositories', 'enabled', 'description'];

/** The query parameters each route of the door reads (pagination, uploads and mounts, manifests, referrers, tokens). */
export const DOOR_QUERY_PARAMETERS: Partial<Record<RouteSpec['name'], string[]>> = {
  catalog: ['n', 'last'],
  tags: ['n', 'last'],
  uploadStart: ['digest', 'mount', 'from'],
  upload: ['digest'],
  manifest: ['tag'],
  referrers: ['artifactType'],
  token: ['scope', 'service', 'account', 'offline_token', 'client_id'],
};

/**
 * Parameters whose value has a structure a raw hostile string never has: the hostile string is also tried inside a
 * well-formed value, where it reaches further (a scope's name is looked up, a mount's digest parsed).
 */
export const SHAPED_PARAMETERS: Record<string, (hostile: string) => string> = {
  scope: (h) => `repository:${h}:pull`,
  mount: (h) => `sha256:${h}`,
  digest: (h) => `sha256:${h}`,
  artifactType: (h) => `application/${h}`,
};

/** The form fields of POST /token. */
export const TOKEN_FORM_FIELDS = ['grant_type', 'username', 'password', 'refresh_token', 'scope', 'service', 'access_type', 'client_id'];
