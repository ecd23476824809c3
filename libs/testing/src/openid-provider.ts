/**
 * A real OpenID Provider for tests: the certified `oidc-provider` package, in-process on 127.0.0.1, with one
 * confidential client (code + PKCE) and accounts a test edits. Its signing keys can be rotated (the provider is
 * rebuilt on the same port with a new key first and the old one still published), and a browser's walk through it
 * (redirects, its login and consent forms, its cookies) is driven by {@link OpenIdProvider.authorize}. A second,
 * public client (`cliClientId`) has the device authorization grant (RFC 8628), confirmed by {@link OpenIdProvider.confirmDevice}.
 *
 * Its login and consent pages are this helper's own (a company's login page, small): a username (the account's
 * subject or its `preferred_username`) and a password, checked when the account has one (a wrong one stays on the
 * page, saying so), then an "Allow" for the client's scopes. A real browser can walk them (tools/console/oidc-browser.ts).
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What an account's ID token says, and its password at the provider. */
export interface TestAccount {
  /** The password its login page wants; without one, any non-empty password signs in (the specs' walks). */
  password?: string;
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

/** The little of an `oidc-provider` Provider the login and consent pages use. */
interface ProviderSurface {
  interactionDetails(
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<{
    prompt: { name: string; details: { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> } };
    params: { client_id: string };
    grantId?: string;
    session?: { accountId: string };
  }>;
  interactionFinished(req: http.IncomingMessage, res: http.ServerResponse, result: Record<string, unknown>, options: { mergeWithLastSubmission: boolean }): Promise<void>;
  Grant: {
    new (init: { accountId?: string; clientId: string }): GrantSurface;
    find(id: string): Promise<GrantSurface>;
  };
}
interface GrantSurface {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(indicator: string, scope: string): void;
  save(): Promise<string>;
}

/** Enough of a look for a screenshot of a company's login page. */
const PAGE_STYLE =
  'body{font-family:sans-serif;background:#eef1f5;margin:0}main{max-width:22rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 2px 8px #0002}' +
  'h1{font-size:1.4rem;color:#7a2e8e}label,input,button{display:block;width:100%;box-sizing:border-box}input{margin:.25rem 0 1rem;padding:.5rem}' +
  'button{padding:.6rem;background:#7a2e8e;color:#fff;border:0;border-radius:4px;font-size:1rem}[role=alert]{color:#b00020}';

function htmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('the form is too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
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
      // Lifetimes said outright (the package's defaults, which it asks to be set): an ID token lasts an hour.
      ttl: { AccessToken: 3600, AuthorizationCode: 60, DeviceCode: 600, Grant: 3600, IdToken: 3600, Interaction: 3600, Session: 3600 },
      features: {
        devInteractions: { enabled: false },
        deviceFlow: { enabled: true },
        // Its own page (the package's asks a font of another origin): a heading, the form and one button.
        rpInitiatedLogout: {
          enabled: true,
          async logoutSource(ctx: { body: string }, form: string) {
            ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Corp sign-out</title><style>${PAGE_STYLE}</style></head><body><main><h1>Corp sign-out</h1>${form}<button type="submit" form="op.logoutForm" value="yes" name="logout">Sign out of Corp</button></main></body></html>`;
          },
        },
      },
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
      async findAccount(_ctx: unknown, sub: string) {
        const account = accounts.get(sub);
        if (!account) return undefined;
        const claims: Record<string, unknown> = { sub, ...account };
        delete claims.password;
        return { accountId: sub, claims: async () => claims };
      },
    } as never);
    const callback = provider.callback() as http.RequestListener;
    handler = (req, res) => {
      if (!req.url?.startsWith('/interaction/')) return callback(req, res);
      interaction(provider, req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(`the interaction failed: ${err instanceof Error ? err.message : String(err)}`);
      });
    };
  }

  /** The subject a login page's username names: a subject, or an account's preferred_username. */
  function subjectOf(login: string): string | undefined {
    if (accounts.has(login)) return login;
    return [...accounts].find(([, a]) => a.preferred_username === login)?.[0];
  }

  /** The login and consent pages: GET /interaction/:uid shows the prompt's page, POST …/login and …/consent answer it. */
  async function interaction(provider: ProviderSurface, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const [, , uid, action] = new URL(req.url ?? '/', issuer).pathname.split('/');
    const details = await provider.interactionDetails(req, res);
    const page = (title: string, body: string, status = 200) => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title><style>${PAGE_STYLE}</style></head><body><main><h1>${title}</h1>${body}</main></body></html>`);
    };
    const loginForm = (error: string | null, login = '') =>
      page(
        'Corp sign-in',
        `${error ? `<p role="alert">${htmlEscape(error)}</p>` : ''}<form method="post" action="/interaction/${htmlEscape(uid)}/login">` +
          `<label for="login">Username</label><input id="login" name="login" value="${htmlEscape(login)}" autocomplete="username" required>` +
          `<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>` +
          `<button type="submit">Sign in</button></form>`,
        error ? 401 : 200,
      );
    if (req.method === 'GET') {
      if (details.prompt.name === 'login') return loginForm(null);
      if (details.prompt.name === 'consent') {
        const scopes = (details.prompt.details.missingOIDCScope ?? []).filter((s) => s !== 'openid').map(htmlEscape).join(', ');
        return page('Corp sign-in', `<p>${htmlEscape(details.params.client_id)} asks for: ${scopes || 'your identity'}.</p><form method="post" action="/interaction/${htmlEscape(uid)}/consent"><button type="submit">Allow</button></form>`);
      }
      return page('Corp sign-in', `<p>Unexpected prompt ${htmlEscape(details.prompt.name)}.</p>`, 501);
    }
    const form = new URLSearchParams(await readBody(req));
    if (action === 'login' && details.prompt.name === 'login') {
      const login = form.get('login') ?? '';
      const subject = subjectOf(login);
      const wanted = subject === undefined ? undefined : accounts.get(subject)?.password;
      const password = form.get('password') ?? '';
      if (subject === undefined || password === '' || (wanted !== undefined && password !== wanted)) return loginForm('Invalid username or password.', login);
      return provider.interactionFinished(req, res, { login: { accountId: subject } }, { mergeWithLastSubmission: false });
    }
    if (action === 'consent' && details.prompt.name === 'consent') {
      const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details;
      const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId: details.session?.accountId, clientId: details.params.client_id });
      if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
      if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
      return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
    }
    return page('Corp sign-in', '<p>This step is not expected now.</p>', 400);
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
