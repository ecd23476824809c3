import { LoopbackIssuer, OpenIdProvider, startLoopbackIssuer, startOpenIdProvider } from '@lading/testing';
import { OidcClient, OidcError, createIssuerVerifier, createOidcClient, pkceChallenge } from './oidc-client';

const REDIRECT = 'http://lading.test/ui/api/oidc/callback';

describe('the OIDC client against a real oidc-provider: ID tokens checked by signature, iss, aud, exp and nonce', () => {
  let op: OpenIdProvider;
  let other: LoopbackIssuer;
  let client: OidcClient;
  let idToken = '';
  let nonce = '';
  let code = '';
  let verifier = '';

  /** Fetch that keeps the last ID token the provider's token endpoint answered. */
  const recording: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (init?.method === 'POST' && res.ok) {
      const body = (await res.clone().json()) as { id_token?: string };
      if (body.id_token) idToken = body.id_token;
    }
    return res;
  };

  beforeAll(async () => {
    op = await startOpenIdProvider(REDIRECT);
    other = await startLoopbackIssuer();
    op.accounts.set('sub-1', { preferred_username: 'kim', groups: ['devs'] });
    client = createOidcClient({ issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret, redirectUrl: REDIRECT, scopes: ['openid', 'profile', 'groups'], fetch: recording });
    const signIn = client.newSignIn();
    ({ nonce, codeVerifier: verifier } = signIn);
    const back = await op.authorize(await client.authorizationUrl(signIn), 'sub-1');
    expect(back.searchParams.get('state')).toBe(signIn.state);
    code = back.searchParams.get('code')!;
    const claims = await client.finishSignIn(code, { nonce, codeVerifier: verifier });
    expect(claims).toMatchObject({ iss: op.issuer, sub: 'sub-1', aud: op.clientId, nonce, preferred_username: 'kim', groups: ['devs'] });
  });
  afterAll(async () => {
    await op.close();
    await other.close();
  });

  it('computes the S256 challenge of RFC 7636 appendix B', () => {
    expect(pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });

  it('verifies the ID token it was issued, for its client and nonce', async () => {
    await expect(client.verifier.verify(idToken, { audience: op.clientId, nonce })).resolves.toMatchObject({ sub: 'sub-1' });
  });

  it('refuses the ID token for another audience', async () => {
    await expect(client.verifier.verify(idToken, { audience: 'another-client' })).rejects.toThrow('the token is for another audience');
  });

  it('refuses the ID token once it has expired (beyond 60 s of skew)', async () => {
    const later = createIssuerVerifier(op.issuer, { now: () => Date.now() + 2 * 3600_000 });
    await expect(later.verify(idToken, { audience: op.clientId })).rejects.toThrow('the token has expired');
  });

  it('refuses the ID token at a verifier of another issuer, and one naming another iss though signed by a published key', async () => {
    await expect(createIssuerVerifier(other.issuer).verify(idToken, { audience: op.clientId })).rejects.toThrow(OidcError);
    const wrongIss = await other.sign({ iss: 'https://elsewhere.example', sub: 'x', aud: 'a' });
    await expect(createIssuerVerifier(other.issuer).verify(wrongIss, { audience: 'a' })).rejects.toThrow('the token was issued by another issuer');
  });

  it('refuses an unsigned token (alg none) and a tampered one', async () => {
    const [header, payload, signature] = idToken.split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${payload}.`;
    await expect(client.verifier.verify(none, { audience: op.clientId })).rejects.toThrow(OidcError);
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: 'sub-2' })).toString('base64url')}.${signature}`;
    await expect(client.verifier.verify(tampered, { audience: op.clientId })).rejects.toThrow('the token signature does not verify');
  });

  it('refuses a replayed authorization code', async () => {
    await expect(client.finishSignIn(code, { nonce, codeVerifier: verifier })).rejects.toThrow('the provider refused the authorization code (invalid_grant)');
  });
});
