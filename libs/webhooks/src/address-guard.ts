/**
 * The SSRF guard of webhook URLs: classifies IP addresses (loopback, private, link-local, CGNAT, metadata, ...),
 * matches the admin allow-list (host names, addresses, CIDR ranges), and provides the DNS lookup the delivery
 * agent connects through, so that every address a host resolves to is checked at connect time too (a host that
 * resolved to a public address when the subscription was made may resolve to 127.0.0.1 later: DNS rebinding).
 */
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';

/** What kind of address an IP is; only `public` may be a webhook target without the allow-list. */
export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'cgnat'
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'metadata'
  | 'reserved';

/** A CIDR range as numbers: the family, the masked base and the prefix length. */
interface Range {
  family: 4 | 6;
  base: bigint;
  prefix: number;
}

function parseIPv4(text: string): bigint | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return null;
    value = (value << 8n) | BigInt(Number(part));
  }
  return value;
}

function parseIPv6(input: string): bigint | null {
  let text = input.toLowerCase();
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  if (isIP(text) !== 6) return null;
  // A trailing dotted IPv4 (e.g. ::ffff:127.0.0.1) becomes two hextets.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = parseIPv4(dotted[1]);
    if (v4 === null) return null;
    text = `${text.slice(0, -dotted[1].length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, null];
  const headParts = head ? head.split(':') : [];
  const tailParts = tail ? tail.split(':') : [];
  const missing = 8 - headParts.length - tailParts.length;
  if (tail === null ? missing !== 0 : missing < 0) return null;
  const parts = [...headParts, ...Array<string>(tail === null ? 0 : missing).fill('0'), ...tailParts];
  let value = 0n;
  for (const part of parts) value = (value << 16n) | BigInt(parseInt(part || '0', 16));
  return value;
}

/** Parses an IP address (IPv4, IPv6, IPv6 in brackets) to its family and value; null when it is not one. */
export function parseAddress(text: string): { family: 4 | 6; value: bigint } | null {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const v4 = isIP(bare) === 4 ? parseIPv4(bare) : null;
  if (v4 !== null) return { family: 4, value: v4 };
  const v6 = parseIPv6(bare);
  return v6 === null ? null : { family: 6, value: v6 };
}

function range(cidr: string): Range {
  const [address, prefix] = cidr.split('/');
  const parsed = parseAddress(address)!;
  const bits = parsed.family === 4 ? 32 : 128;
  const length = prefix === undefined ? bits : Number(prefix);
  const mask = length === 0 ? 0n : ((1n << BigInt(length)) - 1n) << BigInt(bits - length);
  return { family: parsed.family, base: parsed.value & mask, prefix: length };
}

function inRange(r: Range, family: 4 | 6, value: bigint): boolean {
  if (r.family !== family) return false;
  const bits = family === 4 ? 32 : 128;
  const shift = BigInt(bits - r.prefix);
  return r.prefix === 0 || value >> shift === r.base >> shift;
}

// Most specific first: the first range that contains an address names its class.
const CLASSIFIED: Array<[AddressClass, Range]> = (
  [
    ['metadata', '169.254.169.254/32'],
    ['metadata', '169.254.170.2/32'],
    ['metadata', 'fd00:ec2::254/128'],
    ['broadcast', '255.255.255.255/32'],
    ['unspecified', '0.0.0.0/8'],
    ['private', '10.0.0.0/8'],
    ['cgnat', '100.64.0.0/10'],
    ['loopback', '127.0.0.0/8'],
    ['link-local', '169.254.0.0/16'],
    ['private', '172.16.0.0/12'],
    ['reserved', '192.0.0.0/24'],
    ['reserved', '192.0.2.0/24'],
    ['reserved', '198.18.0.0/15'],
    ['reserved', '198.51.100.0/24'],
    ['reserved', '203.0.113.0/24'],
    ['private', '192.168.0.0/16'],
    ['multicast', '224.0.0.0/4'],
    ['reserved', '240.0.0.0/4'],
    ['unspecified', '::/128'],
    ['loopback', '::1/128'],
    ['private', 'fc00::/7'],
    ['link-local', 'fe80::/10'],
    ['reserved', 'fec0::/10'],
    ['multicast', 'ff00::/8'],
    ['reserved', '2001:db8::/32'],
    ['reserved', '100::/64'],
  ] as Array<[AddressClass, string]>
).map(([cls, cidr]) => [cls, range(cidr)]);

/** IPv6 forms that carry an IPv4 address in their last 32 bits: IPv4-mapped, IPv4-compatible, NAT64. */
const EMBEDDED_IPV4 = [range('::ffff:0:0/96'), range('::/96'), range('64:ff9b::/96')];

/** The IPv4 address an IPv6 address embeds (mapped, compatible or NAT64), else null. `::` and `::1` embed none. */
function embeddedIPv4(value: bigint): bigint | null {
  if (value <= 1n) return null;
  return EMBEDDED_IPV4.some((r) => inRange(r, 6, value)) ? value & 0xffffffffn : null;
}

/** Classifies an IP address; IPv6 forms that embed an IPv4 address are classified by that address. Throws on a non-address. */
export function classifyAddress(address: string): AddressClass {
  const parsed = parseAddress(address);
  if (!parsed) throw new Error(`not an IP address: ${address}`);
  let { family, value } = parsed;
  if (family === 6) {
    const v4 = embeddedIPv4(value);
    if (v4 !== null) {
      family = 4;
      value = v4;
    }
  }
  for (const [cls, r] of CLASSIFIED) if (inRange(r, family, value)) return cls;
  return 'public';
}

/** The admin allow-list, parsed: host names, and address ranges (a single address is a full-length range). */
export interface AllowList {
  hosts: Set<string>;
  ranges: Range[];
}

/** Parses `webhooks.allowList`: each entry a host name, an IP address, or a CIDR range (`10.0.0.0/8`, `fd00::/8`). */
export function parseAllowList(entries: readonly string[]): AllowList {
  const list: AllowList = { hosts: new Set(), ranges: [] };
  for (const raw of entries) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    const [address, prefix] = entry.split('/');
    const parsed = parseAddress(address);
    if (parsed) {
      const bits = parsed.family === 4 ? 32 : 128;
      const length = prefix === undefined ? bits : Number(prefix);
      if (!/^\d+$/.test(prefix ?? String(bits)) || length > bits) throw new Error(`webhooks.allowList: bad CIDR ${raw}`);
      list.ranges.push(range(`${address}/${length}`));
    } else {
      list.hosts.add(entry.replace(/^\[|\]$/g, ''));
    }
  }
  return list;
}

function addressAllowed(list: AllowList, address: string): boolean {
  const parsed = parseAddress(address);
  if (!parsed) return false;
  const candidates: Array<[4 | 6, bigint]> = [[parsed.family, parsed.value]];
  const v4 = parsed.family === 6 ? embeddedIPv4(parsed.value) : null;
  if (v4 !== null) candidates.push([4, v4]);
  return list.ranges.some((r) => candidates.some(([family, value]) => inRange(r, family, value)));
}

/** Why a target was refused, or null when it may be connected to. */
export function refusalOf(list: AllowList, host: string, address: string): string | null {
  if (list.hosts.has(host.toLowerCase().replace(/^\[|\]$/g, ''))) return null;
  const cls = classifyAddress(address);
  if (cls === 'public' || addressAllowed(list, address)) return null;
  return `${host} resolves to ${address}, a ${cls} address (not in webhooks.allowList)`;
}

/** A resolved address. */
export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to all its addresses; injected so that tests can play DNS rebinding. */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

/** The system resolver (getaddrinfo, as connections use it). */
export const systemResolver: Resolver = (host) =>
  new Promise((resolve, reject) => dnsLookup(host, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));

/** A target the guard refused; the delivery worker records its message as the attempt's error. */
export class RefusedTargetError extends Error {
  readonly code = 'EWEBHOOKREFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'RefusedTargetError';
  }
}

/** Resolves a URL's host and checks every address; resolves with them, or rejects with RefusedTargetError. */
export async function checkTarget(list: AllowList, resolver: Resolver, url: URL): Promise<ResolvedAddress[]> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const literal = parseAddress(host);
  let addresses: ResolvedAddress[];
  if (literal) addresses = [{ address: host, family: literal.family }];
  else {
    try {
      addresses = await resolver(host);
    } catch (err) {
      throw new RefusedTargetError(`${host} does not resolve (${(err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? err})`);
    }
  }
  if (addresses.length === 0) throw new RefusedTargetError(`${host} does not resolve`);
  for (const { address } of addresses) {
    const refusal = refusalOf(list, host, address);
    if (refusal) throw new RefusedTargetError(refusal);
  }
  return addresses;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | ResolvedAddress[], family?: number) => void;

/**
 * A `lookup` for `net.connect` (undici's `connect.lookup`): resolves with `resolver`, refuses the connection when any
 * address is refused, and answers in the form the caller asked for (`all` or a single address).
 */
export function guardedLookup(list: AllowList, resolver: Resolver) {
  return (hostname: string, options: { all?: boolean; family?: number } | number, callback: LookupCallback): void => {
    const all = typeof options === 'object' && options?.all === true;
    checkTarget(list, resolver, new URL(`http://${parseAddress(hostname)?.family === 6 ? `[${hostname}]` : hostname}/`)).then(
      (addresses) => {
        if (all) callback(null, addresses);
        else callback(null, addresses[0].address, addresses[0].family);
      },
      (err) => callback(err as NodeJS.ErrnoException, all ? [] : '', 0),
    );
  };
}
