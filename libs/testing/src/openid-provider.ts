/**
 * A real OpenID Provider for tests: the certified `oidc-provider` package, in-process on 127.0.0.1, with one
 * confidential client (code + PKCE) and accounts a test edits. Its signing keys can be rotated (the provider is
 * rebuilt on the same port with a new key first and the old one still published), and a browser's walk through it
 * (redirects, its login and consent forms, its cookies) is driven by {@link OpenIdProvider.authorize}. A second,
 * public client (`cliClientId`) has the device authorization grant (RFC 8628), confirmed by {@link OpenIdProvider.confirmDevice}.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What an account's ID token says. */
export interface TestAccount {
  preferred_username?: string;
  email?: string;
  email_verified?: boolean;
  groups?: string[];
}

/** A running provider. */
export interface OpenIdProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The public client with the device authorization grant. */
  cliClientId: string;
  /** Accounts by subject; edit them between sign-ins. */
  accounts: Map<string, TestAccount>;
  /** Publishes a new signing key, signs with it from now on, keeps the old ones published. */
  rotateKeys(): Promise<void>;
  /** The kids the provider publishes, the signing one first. */
  kids(): string[];
  /**
   * Walks a browser from an authorization URL through the provider, signing in as `subject` and consenting, to the
   * redirect back to the client; returns that redirect's URL (with its code and state, or an error).
   */
  authorize(authorizationUrl: string, subject: string): Promise<URL>;
  /** Walks a browser from a device grant's verification URL through confirming the code, signed in as `subject`. */
  confirmDevice(verificationUrl: string, subject: string): Promise<void>;
  close(): Promise<void>;
}

function newSigningKey(): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };
}

/** Starts a provider whose client sends browsers back to `redirectUri`. */
export async function startOpenIdProvider(redirectUri: string): Promise<OpenIdProvider> {
  const { default: Provider } = await import('oidc-provider');
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clientId = 'lading-console';
  const clientSecret = `cs-${randomUUID()}-never-logged`;
  const cliClientId = 'lading-cli';
  const accounts = new Map<string, TestAccount>();
  let keys = [newSigningKey()];
  let handler: http.RequestListener = () => undefined;
  server.on('request', (req, res) => handler(req, res));

  function build(): void {
    const provider = new Provider(issuer, {
      clients: [
        {
          client_id: clientId,
          client_secret: clientSecret,
          redirect_uris: [redirectUri],
          post_logout_redirect_uris: [new URL('/ui/', redirectUri).toString()],
          grant_types: ['authorization_code'],
          response_types: ['code'],
        },
        { client_id: cliClientId, token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [], redirect_uris: [] },
      ],
      jwks: { keys: keys as never },
      cookies: { keys: ['test-cookie-key-0123456789abcdef'] },
      pkce: { required: () => true },
      claims: { openid: ['sub'], profile: ['preferred_username'], email: ['email', 'email_verified'], groups: ['groups'] },
      scopes: ['openid', 'profile', 'email', 'groups'],
      conformIdTokenClaims: false,
      features: { devInteractions: { enabled: true }, deviceFlow: { enabled: true } },
      async findAccount(_ctx: unknown, sub: string) {
        const account = accounts.get(sub);
        if (!account) return undefined;
        return { accountId: sub, claims: async () => ({ sub, ...account }) };
      },
    } as never);
    handler = provider.callback() as http.RequestListener;
  }
  build();

  /** Follows a browser from `start` through the provider's redirects and forms; returns the first URL off the provider, or the last page's. */
  async function browse(start: string, subject: string): Promise<URL> {
    const jar = new Map<string, string>();
    const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    let url = new URL(start);
    let init: RequestInit = { method: 'GET' };
    for (let step = 0; step < 20; step++) {
      if (url.origin !== issuer) return url;
      const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie: cookieHeader() } });
      for (const line of res.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const eq = pair.indexOf('=');
        jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
      }
      const location = res.headers.get('location');
      if (location) {
        url = new URL(location, url);
        init = { method: 'GET' };
        continue;
      }
      const html = await res.text();
      const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(html);
      if (!form) {
        if (res.status >= 400) throw new Error(`the provider answered ${res.status}: ${html.slice(0, 300)}`);
        return url;
      }
      const fields = new URLSearchParams();
      for (const input of form[2].match(/<input[^>]*>/g) ?? []) {
        const name = /name="([^"]+)"/.exec(input)?.[1];
        if (!name) continue;
        fields.set(name, name === 'login' ? subject : name === 'password' ? 'any' : (/value="([^"]*)"/.exec(input)?.[1] ?? ''));
      }
      url = new URL(form[1].replace(/&amp;/g, '&'), url);
      init = { method: 'POST', body: fields.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
    }
    throw new Error('the provider kept redirecting');
  }

  return {
    issuer,
    clientId,
    clientSecret,
    cliClientId,
    accounts,
    async rotateKeys() {
      keys = [newSigningKey(), ...keys];
      build();
    },
    kids: () => keys.map((k) => String(k.kid)),
    async authorize(authorizationUrl, subject) {
      const back = await browse(authorizationUrl, subject);
      if (back.origin === issuer) throw new Error(`the provider stopped at ${back.pathname}`);
      return back;
    },
    async confirmDevice(verificationUrl, subject) {
      await browse(verificationUrl, subject);
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
