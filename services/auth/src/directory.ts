/**
 * Sign-in against an LDAP directory: the service account searches for the user by name, the user's own DN is bound
 * with the password sent (the directory checks it; Lading never sees a hash), and the groups that hold the user are
 * read, with the groups holding those when `nestedGroups` is on (breadth first, at most `maxGroupDepth` levels, each
 * group visited once, so a cycle of groups ends).
 *
 * Every value put into a filter is escaped as RFC 4515 says, so a username such as `*)(uid=*` matches nothing but
 * itself. A bind refused (wrong password, unknown or ambiguous user) is a refusal, null; anything else (no connection,
 * a timeout, TLS, the service account refused) means the directory cannot answer, {@link DirectoryUnavailableError}.
 * No password, the service account's included, is ever put into an error or a log line.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Client, InvalidCredentialsError, SizeLimitExceededError } from 'ldapts';
import { type LadingConfig, durationMs } from '@lading/config';

/** The `auth.ldap` settings. */
export type LdapSettings = NonNullable<LadingConfig['auth']['ldap']>;

/** Who a directory sign-in proved: the user's name (the username attribute's value), DN and group names. */
export interface DirectoryIdentity {
  username: string;
  dn: string;
  groups: string[];
}

/** The directory could not answer (down, unreachable, too slow, misconfigured); says why, never with a secret. */
export class DirectoryUnavailableError extends Error {
  constructor(reason: string) {
    super(`the directory is unavailable: ${reason}`);
    this.name = 'DirectoryUnavailableError';
  }
}

/** An identity provider that checks a username and password: the seam between the login and a directory. */
export interface DirectoryClient {
  /** The identity the password proves; null when the directory refuses it; throws DirectoryUnavailableError when it cannot say. */
  authenticate(username: string, password: string): Promise<DirectoryIdentity | null>;
}

/** Escapes a value for an LDAP search filter (RFC 4515): `\`, `*`, `(`, `)` and NUL as `\XX`. */
export function escapeFilterValue(value: string): string {
  // eslint-disable-next-line no-control-regex -- NUL must be escaped too
  return value.replace(/[\\*()\u0000]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Fills `{name}` placeholders of a filter template with escaped values. */
export function fillFilter(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => (key in values ? escapeFilterValue(values[key]) : whole));
}

/** What the LDAP directory client is built from; files are read through `readFile` (tests may pass their own). */
export interface LdapDirectoryDeps {
  settings: LdapSettings;
  readFile?: (path: string) => string;
}

/** The service account's password: `bindPassword`, or the content of `bindPasswordFile` read at each use. */
function bindPassword(settings: LdapSettings, readFile: (path: string) => string): string | undefined {
  if (settings.bindPassword !== undefined) return settings.bindPassword;
  if (settings.bindPasswordFile === undefined) return undefined;
  try {
    return readFile(settings.bindPasswordFile).trim();
  } catch (err) {
    throw new DirectoryUnavailableError(`auth.ldap.bindPasswordFile ${settings.bindPasswordFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function first(value: unknown): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return undefined;
}

/** Creates the LDAP directory client; each sign-in opens its own connection and closes it. */
export function createLdapDirectory(deps: LdapDirectoryDeps): DirectoryClient {
  const { settings } = deps;
  const readFile = deps.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  const timeoutMs = durationMs(settings.timeout);

  function tlsOptions(): ConnectionOptions {
    const host = new URL(settings.url).hostname.replace(/^\[|\]$/g, '');
    // SNI names a host, never an address (RFC 6066); the certificate is checked against either all the same.
    return { ...(isIP(host) ? {} : { servername: host }), ...(settings.caFile ? { ca: readFile(settings.caFile) } : {}) };
  }

  /** A client of the directory; it connects on its first operation. */
  function clientOf(): Client {
    const secure = settings.url.startsWith('ldaps:');
    return new Client({ url: settings.url, timeout: timeoutMs, connectTimeout: timeoutMs, ...(secure ? { tlsOptions: tlsOptions() } : {}) });
  }

  /** The names of the groups holding `dn`, and of the groups holding those when nestedGroups is on. */
  async function groupsOf(client: Client, dn: string, username: string): Promise<string[]> {
    if (!settings.groupBase) return [];
    const names = new Set<string>();
    const seen = new Set<string>([dn.toLowerCase()]);
    let members = [dn];
    const depth = settings.nestedGroups ? settings.maxGroupDepth : 1;
    for (let level = 0; level < depth && members.length; level++) {
      const next: string[] = [];
      for (const member of members) {
        const { searchEntries } = await client.search(settings.groupBase, {
          scope: 'sub',
          filter: fillFilter(settings.groupFilter, { dn: member, username }),
          attributes: [settings.groupNameAttribute],
          sizeLimit: 1000,
        });
        for (const entry of searchEntries) {
          const name = first(entry[settings.groupNameAttribute]);
          if (name) names.add(name);
          if (!seen.has(entry.dn.toLowerCase())) {
            seen.add(entry.dn.toLowerCase());
            next.push(entry.dn);
          }
        }
      }
      members = next;
    }
    return [...names].sort();
  }

  async function authenticate(username: string, password: string): Promise<DirectoryIdentity | null> {
    // An empty password would be an unauthenticated bind, which most directories accept: never a sign-in.
    if (password === '' || username === '') return null;
    const client = clientOf();
    try {
      if (settings.startTls) await client.startTLS(tlsOptions());
      if (settings.bindDn) await client.bind(settings.bindDn, bindPassword(settings, readFile));
      let searchEntries;
      try {
        ({ searchEntries } = await client.search(settings.userBase, {
          scope: 'sub',
          filter: fillFilter(settings.userFilter, { username }),
          attributes: [settings.usernameAttribute],
          sizeLimit: 2,
        }));
      } catch (err) {
        if (err instanceof SizeLimitExceededError) return null; // more than one entry: ambiguous, never a sign-in
        throw err;
      }
      if (searchEntries.length !== 1) return null;
      const entry = searchEntries[0];
      const name = first(entry[settings.usernameAttribute]);
      if (!name || name.toLowerCase() !== username.toLowerCase()) return null;
      try {
        await client.bind(entry.dn, password);
      } catch (err) {
        if (err instanceof InvalidCredentialsError) return null;
        throw err;
      }
      // Groups are read as the service account (the user may not be allowed to read them).
      if (settings.bindDn) await client.bind(settings.bindDn, bindPassword(settings, readFile));
      return { username: name, dn: entry.dn, groups: await groupsOf(client, entry.dn, name) };
    } finally {
      await client.unbind().catch(() => undefined);
    }
  }

  return {
    async authenticate(username, password) {
      try {
        return await authenticate(username, password);
      } catch (err) {
        if (err instanceof DirectoryUnavailableError) throw err;
        const reason = err instanceof InvalidCredentialsError ? 'the service account (auth.ldap.bindDn) was refused' : (err as Error).message || (err as Error).name;
        throw new DirectoryUnavailableError(reason);
      }
    },
  };
}
