/** `WWW-Authenticate` challenges as a registry sends them with a 401 (RFC 7235; the Docker token flow's Bearer). */

/** A parsed challenge: its scheme as sent (`Bearer`, `Basic`) and its quoted parameters (realm, service, scope...). */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses one challenge; null when the header is missing or empty. */
export function parseChallenge(header: string | null | undefined): Challenge | null {
  if (!header) return null;
  const space = header.indexOf(' ');
  const scheme = space === -1 ? header : header.slice(0, space);
  const params: Record<string, string> = {};
  if (space !== -1) for (const m of header.slice(space + 1).matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2];
  return { scheme, params };
}

/** The `Authorization` value of HTTP Basic credentials. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}
