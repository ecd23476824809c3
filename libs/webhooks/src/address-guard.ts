/**
 * The SSRF guard of webhook URLs: classifies IP addresses (loopback, private, link-local, CGNAT, metadata, ...),
 * including every IPv6 form that embeds an IPv4 address, matches the admin allow-list (host names, addresses, CIDR
 * ranges, each optionally limited to one port), and provides the DNS lookup the delivery agent connects through, so
 * that every address a host resolves to is checked at connect time too (a host that resolved to a public address when
 * the subscription was made may resolve to 127.0.0.1 later: DNS rebinding).
 *
 * Addresses are parsed by ipaddr.js after node's strict `isIP` (so `127.1` or `0x7f.0.0.1` is never an address here:
 * a URL's host has already been normalised by the WHATWG URL parser, and resolvers answer in canonical form). Which
 * ranges are not public, and why, is this file's own table below, not the library's.
 */
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { parseAllowListEntry } from '@lading/config';

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

type IP = ipaddr.IPv4 | ipaddr.IPv6;

/** A parsed IP address. */
export interface ParsedAddress {
  family: 4 | 6;
  ip: IP;
}

/** Parses an IP address (IPv4 in four decimal parts, IPv6, IPv6 in brackets, with a zone) ; null when it is not one. */
export function parseAddress(text: string): ParsedAddress | null {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const family = isIP(bare);
  if (family !== 4 && family !== 6) return null;
  return { family, ip: ipaddr.parse(bare) };
}

/**
 * Every range that is not a public unicast address, with its class and why. The most specific range that contains
 * an address names its class (the table is sorted by prefix length when loaded, so its order here is for reading).
 */
const NON_PUBLIC: ReadonlyArray<readonly [cidr: string, cls: AddressClass, why: string]> = [
  ['0.0.0.0/8', 'unspecified', '"this network"; 0.0.0.0 reaches the local host on Linux'],
  ['10.0.0.0/8', 'private', 'RFC 1918 private network'],
  ['100.64.0.0/10', 'cgnat', 'RFC 6598 carrier-grade NAT shared space'],
  ['127.0.0.0/8', 'loopback', 'loopback'],
  ['169.254.0.0/16', 'link-local', 'link-local (RFC 3927)'],
  ['169.254.169.254/32', 'metadata', 'cloud instance metadata (AWS, GCP, Azure, OpenStack)'],
  ['169.254.170.2/32', 'metadata', 'AWS ECS task metadata'],
  ['172.16.0.0/12', 'private', 'RFC 1918 private network'],
  ['192.0.0.0/24', 'reserved', 'IETF protocol assignments (DS-Lite, NAT64 discovery, ...)'],
  ['192.0.2.0/24', 'reserved', 'documentation (TEST-NET-1)'],
  ['192.88.99.0/24', 'reserved', 'deprecated 6to4 relay anycast (RFC 7526)'],
  ['192.168.0.0/16', 'private', 'RFC 1918 private network'],
  ['198.18.0.0/15', 'reserved', 'benchmarking (RFC 2544)'],
  ['198.51.100.0/24', 'reserved', 'documentation (TEST-NET-2)'],
  ['203.0.113.0/24', 'reserved', 'documentation (TEST-NET-3)'],
  ['224.0.0.0/4', 'multicast', 'multicast'],
  ['240.0.0.0/4', 'reserved', 'reserved for future use'],
  ['255.255.255.255/32', 'broadcast', 'limited broadcast'],
  ['::/128', 'unspecified', 'unspecified; reaches the local host'],
  ['::1/128', 'loopback', 'loopback'],
  ['64:ff9b:1::/48', 'reserved', 'local-use NAT64 (RFC 8215): where the IPv4 address sits depends on the network, so it is refused outright'],
  ['100::/64', 'reserved', 'discard-only (RFC 6666)'],
  ['2001:2::/48', 'reserved', 'benchmarking (RFC 5180)'],
  ['2001:10::/28', 'reserved', 'deprecated ORCHID (RFC 4843)'],
  ['2001:db8::/32', 'reserved', 'documentation'],
  ['3fff::/20', 'reserved', 'documentation (RFC 9637)'],
  ['5f00::/16', 'reserved', 'SRv6 segment identifiers (RFC 9602)'],
  ['fc00::/7', 'private', 'unique local addresses (RFC 4193)'],
  ['fd00:ec2::254/128', 'metadata', 'AWS instance metadata over IPv6'],
  ['fe80::/10', 'link-local', 'link-local'],
  ['fec0::/10', 'reserved', 'deprecated site-local'],
  ['ff00::/8', 'multicast', 'multicast'],
];

const CLASSIFIED = NON_PUBLIC.map(([cidr, cls]) => ({ cls, range: ipaddr.parseCIDR(cidr) })).sort((a, b) => b.range[1] - a.range[1]);

/**
 * The IPv6 forms that carry an IPv4 address, and where: an address of one of these forms is classified by the IPv4
 * addresses it embeds as well as by itself, so `[::ffff:0:127.0.0.1]` or `[2002:7f00:1::]` is loopback, not public.
 * Only the local-use NAT64 prefix is refused outright (in the table above): its layout is the network's choice.
 */
const EMBEDDINGS: ReadonlyArray<{ name: string; matches: (bytes: number[]) => boolean; ipv4: (bytes: number[]) => number[][] }> = [
  // ::ffff:a.b.c.d (RFC 4291): a dual-stack socket connects to a.b.c.d itself.
  { name: 'IPv4-mapped', matches: prefixed('::ffff:0:0/96'), ipv4: (b) => [b.slice(12, 16)] },
  // ::ffff:0:a.b.c.d (RFC 2765, SIIT): translated to a.b.c.d.
  { name: 'IPv4-translated', matches: prefixed('::ffff:0:0:0/96'), ipv4: (b) => [b.slice(12, 16)] },
  // ::a.b.c.d (RFC 4291, deprecated IPv4-compatible); :: and ::1 are classified by the table first.
  { name: 'IPv4-compatible', matches: prefixed('::/96'), ipv4: (b) => [b.slice(12, 16)] },
  // 64:ff9b::a.b.c.d (RFC 6052, well-known NAT64 prefix): a NAT64 gateway connects to a.b.c.d.
  { name: 'NAT64', matches: prefixed('64:ff9b::/96'), ipv4: (b) => [b.slice(12, 16)] },
  // 2002:AABB:CCDD::/48 (RFC 3056, 6to4): tunnelled to AA.BB.CC.DD.
  { name: '6to4', matches: prefixed('2002::/16'), ipv4: (b) => [b.slice(2, 6)] },
  // 2001:0:SSSS:SSSS:flags:port:CCCC:CCCC (RFC 4380, Teredo): the server's IPv4, and the client's with every bit inverted.
  { name: 'Teredo', matches: prefixed('2001::/32'), ipv4: (b) => [b.slice(4, 8), b.slice(12, 16).map((x) => x ^ 0xff)] },
  // Any prefix with the interface identifier 0:5efe:a.b.c.d or 200:5efe:a.b.c.d (RFC 5214, ISATAP): tunnelled to a.b.c.d.
  { name: 'ISATAP', matches: (b) => (b[8] & 0xfc) === 0 && b[9] === 0 && b[10] === 0x5e && b[11] === 0xfe, ipv4: (b) => [b.slice(12, 16)] },
];

function prefixed(cidr: string): (bytes: number[]) => boolean {
  const range = ipaddr.IPv6.parseCIDR(cidr);
  return (bytes) => ipaddr.fromByteArray(bytes).match(range);
}

function tableClass(ip: IP): AddressClass {
  for (const { cls, range } of CLASSIFIED) if (ip.kind() === range[0].kind() && ip.match(range)) return cls;
  return 'public';
}

/** An address's class and, when an embedded IPv4 address decided it, which form embedded which address. */
export interface AddressVerdict {
  cls: AddressClass;
  embedded?: { form: string; ipv4: string };
}

/** Classifies a parsed address: by the table, then (IPv6) by every IPv4 address it embeds; the first non-public wins. */
function verdictOf(parsed: ParsedAddress): AddressVerdict {
  const own = tableClass(parsed.ip);
  if (own !== 'public' || parsed.family === 4) return { cls: own };
  const bytes = parsed.ip.toByteArray();
  for (const form of EMBEDDINGS) {
    if (!form.matches(bytes)) continue;
    for (const v4 of form.ipv4(bytes)) {
      const ipv4 = ipaddr.fromByteArray(v4) as ipaddr.IPv4;
      const cls = tableClass(ipv4);
      if (cls !== 'public') return { cls, embedded: { form: form.name, ipv4: ipv4.toString() } };
    }
  }
  return { cls: 'public' };
}

/** Classifies an IP address, IPv6 forms that embed an IPv4 address by that address too. Throws on a non-address. */
export function classifyAddress(address: string): AddressClass {
  const parsed = parseAddress(address);
  if (!parsed) throw new Error(`not an IP address: ${address}`);
  return verdictOf(parsed).cls;
}

/** One allow-list exception: a host name or an address range, on any port or on one. */
type Exception = { host: string; port: number | null } | { range: [IP, number]; port: number | null };

/** The admin allow-list, parsed. */
export interface AllowList {
  exceptions: Exception[];
}

/**
 * Parses `webhooks.allowList` (the grammar is `parseAllowListEntry`'s: a host name, an IP address or a CIDR range,
 * each optionally with `:port`); throws on an entry it does not understand, naming it (the config schema has already
 * refused such an entry at start-up).
 */
export function parseAllowList(entries: readonly string[]): AllowList {
  return {
    exceptions: entries.map((text): Exception => {
      const entry = parseAllowListEntry(text);
      if (entry.kind === 'host') return { host: entry.host, port: entry.port };
      return { range: [ipaddr.parse(entry.address), entry.prefix], port: entry.port };
    }),
  };
}

/** The addresses an allow-list range may match for an address: itself, and the IPv4 address of an IPv4-mapped one. */
function candidates(parsed: ParsedAddress): IP[] {
  const ip = parsed.ip;
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) return [ip, (ip as ipaddr.IPv6).toIPv4Address()];
  return [ip];
}

function excepted(list: AllowList, host: string, parsed: ParsedAddress, port: number): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, '');
  return list.exceptions.some((e) => {
    if (e.port !== null && e.port !== port) return false;
    if ('host' in e) return e.host === name;
    return candidates(parsed).some((ip) => ip.kind() === e.range[0].kind() && ip.match(e.range));
  });
}

/** Why connecting to `address` (for `host`, on `port`) is refused, or null when it may be connected to. */
export function refusalOf(list: AllowList, host: string, address: string, port: number): string | null {
  const parsed = parseAddress(address);
  if (!parsed) return `${host} resolves to ${address}, which is not an IP address`;
  const verdict = verdictOf(parsed);
  if (verdict.cls === 'public' || excepted(list, host, parsed, port)) return null;
  const via = verdict.embedded ? ` (${verdict.embedded.form}, embedding ${verdict.embedded.ipv4})` : '';
  return `${host} resolves to ${address}, ${/^[aeiou]/.test(verdict.cls) ? 'an' : 'a'} ${verdict.cls} address${via} (not in webhooks.allowList for port ${port})`;
}

/** The port a URL connects to: its own, or its scheme's default. */
export function portOf(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
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

/**
 * Resolves a URL's host and checks every address (on the URL's port); resolves with them, or rejects with
 * RefusedTargetError. The host is the WHATWG-normalised one (`http://2130706433/`, `http://0x7f.1/` and
 * `http://127.1/` all have the host 127.0.0.1), the host the connection will be made to.
 */
export async function checkTarget(list: AllowList, resolver: Resolver, url: URL): Promise<ResolvedAddress[]> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = portOf(url);
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
    const refusal = refusalOf(list, host, address, port);
    if (refusal) throw new RefusedTargetError(refusal);
  }
  return addresses;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | ResolvedAddress[], family?: number) => void;

/**
 * A `lookup` for `net.connect` to `port` (undici's `connect.lookup`; a lookup is not told the port, so there is one per
 * port): resolves with `resolver`, refuses the connection when any address is refused, and answers in the form the
 * caller asked for (`all` or a single address).
 */
export function guardedLookup(list: AllowList, resolver: Resolver, port: number) {
  return (hostname: string, options: { all?: boolean; family?: number } | number, callback: LookupCallback): void => {
    const all = typeof options === 'object' && options?.all === true;
    const host = parseAddress(hostname)?.family === 6 ? `[${hostname}]` : hostname;
    checkTarget(list, resolver, new URL(`http://${host}:${port}/`)).then(
      (addresses) => {
        if (all) callback(null, addresses);
        else callback(null, addresses[0].address, addresses[0].family);
      },
      (err) => callback(err as NodeJS.ErrnoException, all ? [] : '', 0),
    );
  };
}
