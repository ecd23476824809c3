/**
 * The seam between Lading and an OpenID Provider: discovery of an issuer, verification of the JWTs it signs (ID
 * tokens of a browser sign-in, a CI job's workload identity token) against its JWKS, and the authorization code
 * flow with PKCE. Built on `jose` (JWS verification and a remote JWKS with caching).
 *
 * Keys: the JWKS is fetched once and kept; a token signed by a key it does not hold (the provider rotated) makes it
 * fetched again, at most once per `jwksCooldownMs`, so that tokens naming made-up keys cannot hammer the provider.
 * Discovery is fetched once per issuer and its `issuer` must be exactly the configured one (OpenID Connect
 * Discovery 1.0, section 4.3), so a document served for another issuer is refused.
 *
 * The client secret is sent to the token endpoint only (HTTP Basic, or the form when the provider supports only
 * that) and never appears in an error or a log line.
 */
import { createHash, randomBytes } from 'node:crypto';

/** The claims of a verified token: the registered ones checked, the rest as the issuer sent them. */
export type VerifiedClaims = Record<string, unknown> & { iss: string; sub: string; exp: number };

/** Why a token or a sign-in was refused; `message` is safe to return to the caller (it quotes no secret). */
export class OidcError extends Error {
  override readonly name = 'OidcError';
}

/** What a token must satisfy beyond its signature and its issuer. */
export interface VerifyOptions {
  /** The audience the token must name (`aud`). */
  audience: string;
  /** The nonce an ID token must carry (a browser sign-in's). */
  nonce?: string;
}

/** Verifies the JWTs of one issuer against its discovered JWKS. */
export interface IssuerVerifier {
  /** The issuer, exactly as configured. */
  readonly issuer: string;
  /** The verified claims; throws {@link OidcError} for a bad signature, issuer, audience, lifetime or nonce. */
  verify(token: string, options: VerifyOptions): Promise<VerifiedClaims>;
}

/** The parameters of one browser sign-in, kept server-side between the redirect and the callback. */
export interface SignInRequest {
  state: string;
  nonce: string;
  /** The PKCE code verifier; the provider gets its S256 challenge. */
  codeVerifier: string;
}

/** A relying party of one OpenID Provider: the authorization code flow with PKCE. */
export interface OidcClient {
  /** The issuer, exactly as configured. */
  readonly issuer: string;
  /** The verifier of the provider's tokens (sharing its keys), e.g. for ID tokens a CLI obtained by the device grant. */
  readonly verifier: IssuerVerifier;
  /** Fresh state, nonce and PKCE verifier for a sign-in. */
  newSignIn(): SignInRequest;
  /** Where to send the browser: the provider's authorization endpoint with the sign-in's parameters. */
  authorizationUrl(signIn: SignInRequest): Promise<string>;
  /** Exchanges an authorization code (with its PKCE verifier) and returns the verified claims of the ID token. */
  finishSignIn(code: string, signIn: Omit<SignInRequest, 'state'>): Promise<VerifiedClaims>;
  /**
   * RP-initiated logout: the provider's end_session_endpoint, sending the browser back to the console (`/ui/` beside
   * the redirect URL) afterwards; null when the provider has none.
   */
  endSessionUrl(): Promise<string | null>;
}

/** How clients reach providers; tests and processes pass the same defaults. */
export interface OidcTransport {
  /** The HTTP client (default: the global fetch). */
  fetch?: typeof fetch;
  /** The clock, in milliseconds (token lifetimes are checked against it). */
  now?: () => number;
  /** Seconds of clock skew allowed on exp, nbf and iat (default 60). */
  clockToleranceSeconds?: number;
  /** The least time between two JWKS fetches caused by unknown keys (default 30 s). */
  jwksCooldownMs?: number;
}

/** Settings of a relying party. */
export interface OidcClientOptions extends OidcTransport {
  issuer: string;
  clientId: string;
  /** Absent for a public client (PKCE alone). */
  clientSecret?: string;
  redirectUrl: string;
  scopes: readonly string[];
}

interface Discovery {
  issuer: string;
  authorization_endpoint?: string;
  token_endpoint?: string;
  jwks_uri: string;
  end_session_endpoint?: string;
  token_endpoint_auth_methods_supported?: string[];
  code_challenge_methods_supported?: string[];
}

const SIGNING_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const HTTP_TIMEOUT_MS = 10_000;

/** The S256 PKCE challenge of a verifier (RFC 7636). */
export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Fetches a provider's discovery document once (a failure is retried by the next call) and checks its issuer. */
function discoveryOf(issuer: string, transport: OidcTransport): () => Promise<Discovery> {
  const fetcher = transport.fetch ?? fetch;
  let cached: Promise<Discovery> | undefined;
  async function load(): Promise<Discovery> {
    const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    let res: Response;
    try {
      res = await fetcher(url, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS), headers: { accept: 'application/json' } });
    } catch (err) {
      throw new OidcError(`the issuer's discovery document could not be fetched: ${(err as Error).message}`);
    }
    if (!res.ok) throw new OidcError(`the issuer's discovery document answered ${res.status}`);
    const doc = (await res.json()) as Partial<Discovery>;
    if (doc.issuer !== issuer) throw new OidcError(`the discovery document names the issuer ${String(doc.issuer)}, not ${issuer}`);
    if (typeof doc.jwks_uri !== 'string') throw new OidcError('the discovery document names no jwks_uri');
    return doc as Discovery;
  }
  return () => {
    cached ??= load().catch((err: unknown) => {
      cached = undefined;
      throw err;
    });
    return cached;
  };
}

/** Creates a verifier of one issuer's tokens (discovery and JWKS fetched on first use, then kept). */
export function createIssuerVerifier(issuer: string, transport: OidcTransport = {}): IssuerVerifier {
  return verifierOver(issuer, discoveryOf(issuer, transport), transport);
}

function verifierOver(issuer: string, discovery: () => Promise<Discovery>, transport: OidcTransport): IssuerVerifier {
  const now = transport.now ?? Date.now;
  type Jose = typeof import('jose', { with: { 'resolution-mode': 'import' } });
  let keys: Promise<{ jose: Jose; jwks: ReturnType<Jose['createRemoteJWKSet']> }> | undefined;
  function keySet() {
    keys ??= (async () => {
      const jose = await import('jose');
      const doc = await discovery();
      const options: Parameters<Jose['createRemoteJWKSet']>[1] = { cooldownDuration: transport.jwksCooldownMs ?? 30_000, timeoutDuration: HTTP_TIMEOUT_MS };
      if (transport.fetch) Object.assign(options, { [jose.customFetch]: transport.fetch });
      return { jose, jwks: jose.createRemoteJWKSet(new URL(doc.jwks_uri), options) };
    })().catch((err: unknown) => {
      keys = undefined;
      throw err;
    });
    return keys;
  }
  return {
    issuer,
    async verify(token, options) {
      const { jose, jwks } = await keySet();
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jose.jwtVerify(token, jwks, {
          issuer,
          audience: options.audience,
          algorithms: SIGNING_ALGORITHMS,
          clockTolerance: transport.clockToleranceSeconds ?? 60,
          currentDate: new Date(now()),
          requiredClaims: ['sub', 'exp', 'iat'],
        }));
      } catch (err) {
        throw new OidcError(describeJoseError(err));
      }
      if (options.nonce !== undefined && payload.nonce !== options.nonce) throw new OidcError('the ID token carries another nonce than its sign-in');
      return payload as VerifiedClaims;
    },
  };
}

/** What went wrong with a token, in words fit for the caller (jose's codes name the check that failed). */
function describeJoseError(err: unknown): string {
  const e = err as { code?: string; claim?: string; message?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return 'the token has expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return e.claim === 'iss' ? 'the token was issued by another issuer' : e.claim === 'aud' ? 'the token is for another audience' : `the token's ${e.claim ?? 'claims'} claim is not acceptable`;
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'the token signature does not verify';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'the token is signed by a key the issuer does not publish';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'the token is not a well-formed JWT';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'the token is signed with an algorithm that is not accepted';
    default:
      return `the token could not be verified${e.code ? ` (${e.code})` : ''}`;
  }
}

/** Encodes a client id or secret for HTTP Basic as RFC 6749 section 2.3.1 asks (form-urlencoded first). */
function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+');
}

/** Creates a relying party of one provider (nothing is fetched until the first sign-in). */
export function createOidcClient(options: OidcClientOptions): OidcClient {
  const fetcher = options.fetch ?? fetch;
  const discovery = discoveryOf(options.issuer, options);
  const verifier = verifierOver(options.issuer, discovery, options);
  return {
    issuer: options.issuer,
    verifier,
    newSignIn: () => ({ state: randomToken(), nonce: randomToken(), codeVerifier: randomToken() }),
    async authorizationUrl(signIn) {
      const doc = await discovery();
      if (!doc.authorization_endpoint) throw new OidcError('the discovery document names no authorization_endpoint');
      const url = new URL(doc.authorization_endpoint);
      url.searchParams.set('response_type', 'code');
      url.searchParams.set('client_id', options.clientId);
      url.searchParams.set('redirect_uri', options.redirectUrl);
      url.searchParams.set('scope', options.scopes.join(' '));
      url.searchParams.set('state', signIn.state);
      url.searchParams.set('nonce', signIn.nonce);
      url.searchParams.set('code_challenge', pkceChallenge(signIn.codeVerifier));
      url.searchParams.set('code_challenge_method', 'S256');
      return url.toString();
    },
    async finishSignIn(code, signIn) {
      const doc = await discovery();
      if (!doc.token_endpoint) throw new OidcError('the discovery document names no token_endpoint');
      const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: options.redirectUrl, code_verifier: signIn.codeVerifier });
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
      const methods = doc.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
      if (options.clientSecret === undefined) form.set('client_id', options.clientId);
      else if (!methods.includes('client_secret_basic') && methods.includes('client_secret_post')) {
        form.set('client_id', options.clientId);
        form.set('client_secret', options.clientSecret);
      } else {
        headers.authorization = `Basic ${Buffer.from(`${formEncode(options.clientId)}:${formEncode(options.clientSecret)}`).toString('base64')}`;
      }
      let res: Response;
      try {
        res = await fetcher(doc.token_endpoint, { method: 'POST', headers, body: form, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
      } catch (err) {
        throw new OidcError(`the provider's token endpoint could not be reached: ${(err as Error).message}`);
      }
      const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
      if (!res.ok) {
        const reason = typeof body.error === 'string' ? body.error.replace(/[^\w.-]/g, '').slice(0, 64) : String(res.status);
        throw new OidcError(`the provider refused the authorization code (${reason})`);
      }
      if (typeof body.id_token !== 'string') throw new OidcError('the provider answered without an ID token');
      return verifier.verify(body.id_token, { audience: options.clientId, nonce: signIn.nonce }).then((claims) => {
        // With several audiences, the ID token must be meant for this client (OpenID Connect Core 3.1.3.7).
        if (Array.isArray(claims.aud) && claims.aud.length > 1 && claims.azp !== options.clientId) throw new OidcError('the ID token was issued to another client (azp)');
        return claims;
      });
    },
    async endSessionUrl() {
      const doc = await discovery();
      if (!doc.end_session_endpoint) return null;
      const url = new URL(doc.end_session_endpoint);
      url.searchParams.set('client_id', options.clientId);
      url.searchParams.set('post_logout_redirect_uri', new URL('/ui/', options.redirectUrl).toString());
      return url.toString();
    },
  };
}
