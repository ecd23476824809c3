/**
 * `lading-admin login`: the OAuth 2.0 device authorization grant (RFC 8628) against the registry's OpenID Provider,
 * then the ID token exchanged at the registry's `/token` (RFC 8693) for a personal access token of the user.
 *
 * The registry names the provider and the CLI's public client at `GET /ui/api/oidc/cli`; the CLI fetches the
 * provider's discovery document (whose issuer must be exactly that one), asks for a device code, tells the person
 * where to confirm it, and polls the token endpoint at the interval the provider asks for (`slow_down` adds 5 s),
 * until the person confirms, refuses, or the code expires.
 */

/** The device-code grant type (RFC 8628 section 3.4). */
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const PERSONAL_ACCESS_TOKEN_TYPE = 'urn:lading:params:oauth:token-type:personal-access-token';

/** A failed sign-in, said in words for the person at the terminal. */
export class DeviceLoginError extends Error {
  override readonly name = 'DeviceLoginError';
}

/** What the device login is given. */
export interface DeviceLoginOptions {
  /** The registry's base URL. */
  registry: string;
  /** Tells the person what to do (where to confirm the code); the CLI writes it to standard error. */
  tell: (line: string) => void;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

/** What a sign-in ends with: a personal access token of the user, to use as the password. */
export interface DeviceLoginResult {
  username: string;
  token: string;
  tokenName: string;
  expiresInSeconds: number;
}

async function json(res: Response, what: string): Promise<Record<string, unknown>> {
  const body = (await res.json().catch(() => null)) as Record<string, unknown> | null;
  if (body === null || typeof body !== 'object') throw new DeviceLoginError(`${what} answered ${res.status} without JSON`);
  return body;
}

function errorOf(body: Record<string, unknown>): string {
  const errors = body.errors as Array<{ message?: string }> | undefined;
  if (Array.isArray(errors) && errors[0]?.message) return errors[0].message;
  return typeof body.error === 'string' ? body.error : 'unknown error';
}

/** Runs the device grant and the exchange; throws {@link DeviceLoginError} when the sign-in does not complete. */
export async function deviceLogin(options: DeviceLoginOptions): Promise<DeviceLoginResult> {
  const fetcher = options.fetch ?? fetch;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const registry = options.registry.replace(/\/+$/, '');
  const form = (fields: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: new URLSearchParams(fields).toString() });

  const cliRes = await fetcher(`${registry}/ui/api/oidc/cli`, { headers: { accept: 'application/json' } });
  if (!cliRes.ok) throw new DeviceLoginError(`the registry offers no sign-in through an identity provider from the CLI (${cliRes.status})`);
  const cli = await json(cliRes, 'the registry');
  const issuer = String(cli.issuer);
  const clientId = String(cli.clientId);
  const scopes = Array.isArray(cli.scopes) ? (cli.scopes as string[]).join(' ') : 'openid';

  const discovery = await json(await fetcher(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`), 'the identity provider');
  if (discovery.issuer !== issuer) throw new DeviceLoginError(`the identity provider's discovery document names another issuer (${String(discovery.issuer)})`);
  if (typeof discovery.device_authorization_endpoint !== 'string' || typeof discovery.token_endpoint !== 'string') {
    throw new DeviceLoginError('the identity provider offers no device authorization grant');
  }

  const deviceRes = await fetcher(discovery.device_authorization_endpoint, form({ client_id: clientId, scope: scopes }));
  const device = await json(deviceRes, 'the identity provider');
  if (!deviceRes.ok || typeof device.device_code !== 'string') throw new DeviceLoginError(`the identity provider refused a device code (${errorOf(device)})`);
  const where = typeof device.verification_uri_complete === 'string' ? device.verification_uri_complete : String(device.verification_uri);
  options.tell(`To sign in, open ${where} and confirm the code ${String(device.user_code)}`);

  let intervalMs = (typeof device.interval === 'number' ? device.interval : 5) * 1000;
  const expiresInMs = (typeof device.expires_in === 'number' ? device.expires_in : 600) * 1000;
  let waited = 0;
  let idToken: string | undefined;
  while (idToken === undefined) {
    if (waited >= expiresInMs) throw new DeviceLoginError('the code expired before it was confirmed; run login again');
    await sleep(intervalMs);
    waited += intervalMs;
    const tokenRes = await fetcher(discovery.token_endpoint, form({ grant_type: DEVICE_CODE_GRANT, device_code: device.device_code, client_id: clientId }));
    const body = await json(tokenRes, 'the identity provider');
    if (tokenRes.ok) {
      if (typeof body.id_token !== 'string') throw new DeviceLoginError('the identity provider answered without an ID token (is the openid scope allowed?)');
      idToken = body.id_token;
    } else if (body.error === 'authorization_pending') continue;
    else if (body.error === 'slow_down') intervalMs += 5000;
    else if (body.error === 'access_denied') throw new DeviceLoginError('the sign-in was refused at the identity provider');
    else if (body.error === 'expired_token') throw new DeviceLoginError('the code expired before it was confirmed; run login again');
    else throw new DeviceLoginError(`the identity provider refused the sign-in (${errorOf(body)})`);
  }

  const exchangeRes = await fetcher(
    `${registry}/token`,
    form({ grant_type: TOKEN_EXCHANGE_GRANT, subject_token: idToken, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token', requested_token_type: PERSONAL_ACCESS_TOKEN_TYPE }),
  );
  const exchanged = await json(exchangeRes, 'the registry');
  if (!exchangeRes.ok) throw new DeviceLoginError(`the registry refused the sign-in: ${errorOf(exchanged)} (${exchangeRes.status})`);
  return { username: String(exchanged.username), token: String(exchanged.access_token), tokenName: String(exchanged.token_name), expiresInSeconds: Number(exchanged.expires_in) };
}
