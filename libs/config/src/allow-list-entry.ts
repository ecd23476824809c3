/**
 * The grammar of one `webhooks.allowList` entry, shared by the config schema (which refuses a bad entry at start-up,
 * naming it) and the webhook address guard (which applies the entries): an address range, an address, or a host
 * name, each optionally followed by `:port`, which then limits the exception to that port.
 *
 *   10.0.0.0/8   10.1.2.3   fd00::/8   ::1   [fd00::1]   hooks.internal
 *   10.0.0.0/8:8080   10.1.2.3:8080   [fd00::]/8:8443   [fd00::1]:8443   hooks.internal:8443
 *
 * An IPv6 address with a port must be in brackets (`fd00::1:8443` is an address). Host names and addresses are
 * normalised as a URL's host is (`Hooks.Internal` → `hooks.internal`, `0x7f.1` → `127.0.0.1`), so an entry matches
 * what the URL of a subscription will actually connect to.
 */
import { isIP } from 'node:net';

/** One parsed allow-list entry: an address range or a host name, and the one port it is limited to (null: any). */
export type AllowListEntry =
  | { kind: 'range'; family: 4 | 6; address: string; prefix: number; port: number | null }
  | { kind: 'host'; host: string; port: number | null };

const BARE_IPV6 = /^([0-9a-fA-F:.]*:[0-9a-fA-F:.]*:[0-9a-fA-F:.]*)(?:\/(\d{1,3}))?$/;
const WITH_PORT = /^(\[[^\]]*\]|[^/:[\]]+)(?:\/(\d{1,3}))?(?::(\d{1,5}))?$/;

/** Parses one `webhooks.allowList` entry; throws an Error whose message names the entry and what is wrong with it. */
export function parseAllowListEntry(entry: string): AllowListEntry {
  const bad = (why: string) => new Error(`webhooks.allowList entry ${JSON.stringify(entry)}: ${why}`);
  const text = entry.trim();
  if (!text) throw bad('is empty');
  const bare = BARE_IPV6.exec(text);
  if (bare) {
    if (isIP(bare[1]) !== 6) throw bad('is not an IPv6 address (put an IPv6 address with a port in brackets: [fd00::1]:8443)');
    return range(6, bare[1].toLowerCase(), bare[2], null);
  }
  const m = WITH_PORT.exec(text);
  if (!m) throw bad('is not an address, a CIDR range or a host name, optionally with :port');
  const [, hostText, prefixText, portText] = m;
  let port: number | null = null;
  if (portText !== undefined) {
    port = Number(portText);
    if (port < 1 || port > 65535) throw bad('has a port outside 1-65535');
  }
  let host: string;
  try {
    host = new URL(`http://${hostText}/`).hostname;
  } catch {
    throw bad('is not an address, a CIDR range or a host name');
  }
  if (host.includes('%')) throw bad('has a zone or an escape in its host');
  const address = host.replace(/^\[|\]$/g, '');
  const family = isIP(address);
  if (family === 4 || family === 6) return range(family, address, prefixText, port);
  if (prefixText !== undefined) throw bad('has a /prefix on a host name');
  return { kind: 'host', host, port };

  function range(family: 4 | 6, address: string, prefixText: string | undefined, port: number | null): AllowListEntry {
    const bits = family === 4 ? 32 : 128;
    const prefix = prefixText === undefined ? bits : Number(prefixText);
    if (prefix > bits) throw bad(`has a prefix longer than ${bits} bits`);
    return { kind: 'range', family, address, prefix, port };
  }
}
