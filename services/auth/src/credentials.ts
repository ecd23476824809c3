/**
 * Reading credentials off a request: the `Authorization: Basic` header and the password grant's form fields.
 * Malformed credentials are refused before anything is looked up, counted or logged; nothing of them is ever
 * quoted back in an error or a log line (a header without a colon is most likely a password alone).
 */
import { OciError } from '@lading/oci';

/** A username and password as sent. */
export interface Credentials {
  username: string;
  password: string;
}

/** C0 controls (NUL included), DEL, C1 controls and unpaired surrogates: no username or password holds them. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\p{Cs}]/u;

/** The error for credentials that are not well formed; it says what was wrong, never what was sent. */
function malformed(what: string): OciError {
  return new OciError('UNSUPPORTED', `malformed credentials: ${what}`, undefined, { status: 400 });
}

/** Refuses a username or password holding control characters (a NUL cannot even be stored or looked up). */
export function checkCredentials(credentials: Credentials): Credentials {
  if (CONTROL.test(credentials.username)) throw malformed('the username holds a control character');
  if (CONTROL.test(credentials.password)) throw malformed('the password holds a control character');
  return credentials;
}

/**
 * Parses `Authorization: Basic …`: null when there is no such header (or another scheme), the credentials when
 * they are well formed, and a 400 when they are not (no colon, or control characters).
 */
export function basicCredentials(header: string | undefined): Credentials | null {
  if (!header || !/^basic /i.test(header)) return null;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw malformed('Basic credentials must be username:password');
  return checkCredentials({ username: decoded.slice(0, colon), password: decoded.slice(colon + 1) });
}
