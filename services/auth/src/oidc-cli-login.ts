/**
 * `lading-admin login`: signing in to the CLI through the OpenID Provider with the device authorization grant
 * (RFC 8628), which needs no browser on the machine running the CLI.
 *
 * The CLI reads the provider and its public client id at `GET /ui/api/oidc/cli`, runs the device grant against the
 * provider itself, and exchanges the ID token it gets at `POST /token` (RFC 8693 token exchange, requested token
 * type {@link PERSONAL_ACCESS_TOKEN_TYPE}) for a personal access token of the user: what the CLI (and `docker login`)
 * already use as a password. The ID token is verified as the browser callback verifies one (signature, issuer,
 * audience: the CLI's client id, lifetime), each ID token is exchanged once, and the same admission applies (allowed
 * domains and groups, the user linked by (issuer, sub), made just in time).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Router } from 'express';
import { durationMs } from '@lading/config';
import * as meta from '@lading/metadata';
import { OciError } from '@lading/oci';
import { OidcError, VerifiedClaims } from './oidc-client';
import { OidcSignInDeps, admitIdentity } from './oidc-sign-in';
import { PAT_PREFIX, newSecret, secretDigest } from './principals';

/** The token type of a personal access token, as `requested_token_type` and `issued_token_type` name it. */
export const PERSONAL_ACCESS_TOKEN_TYPE = 'urn:lading:params:oauth:token-type:personal-access-token';

/** The CLI's sign-in: its discovery route and the exchange of its ID tokens. */
export interface OidcCliLogin {
  /** `GET /ui/api/oidc/cli`: `{issuer, clientId, scopes}`. */
  router: Router;
  /** A personal access token for the user an ID token of the CLI client proves; 401/403/409 as the callback. */
  exchange(idToken: string): Promise<Record<string, unknown>>;
}

/** Creates the CLI's sign-in for the public client `cliClientId`. */
export function createOidcCliLogin(deps: OidcSignInDeps & { cliClientId: string }): OidcCliLogin {
  const { db, config, settings, client, cliClientId } = deps;
  const router = Router();
  router.get('/ui/api/oidc/cli', (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({ issuer: client.issuer, clientId: cliClientId, scopes: settings.scopes });
  });
  return {
    router,
    async exchange(idToken) {
      if (!config.auth.enabled) throw new OciError('UNSUPPORTED', 'auth is off on this registry: there is nothing to sign in to', undefined, { status: 400 });
      let claims: VerifiedClaims;
      try {
        claims = await client.verifier.verify(idToken, { audience: cliClientId });
      } catch (err) {
        if (!(err instanceof OidcError)) throw err;
        throw new OciError('UNAUTHORIZED', `sign-in refused: ${err.message}`);
      }
      // ID tokens need not carry a jti: the token itself (by digest) is what may be exchanged once.
      const digest = createHash('sha256').update(idToken).digest('hex');
      if (!(await meta.recordWorkloadTokenUse(db, client.issuer, `cli:${digest}`, new Date(claims.exp * 1000)))) {
        throw new OciError('UNAUTHORIZED', 'this ID token has already been exchanged; sign in again');
      }
      const principal = await admitIdentity(deps, claims);
      const ttlMs = durationMs(config.auth.refreshTtl);
      const token = newSecret(PAT_PREFIX);
      const name = `cli-${new Date(deps.now()).toISOString().slice(0, 19).replace(/[:T]/g, '-')}-${randomBytes(3).toString('hex')}`;
      const expiresAt = new Date(deps.now() + ttlMs);
      const made = await db.transaction(async (tx) => {
        if (!(await meta.createAccessToken(tx, principal.name, name, secretDigest(token), expiresAt))) return false;
        // The groups of this sign-in ride with the token for as long as it lasts (auth.refreshTtl), as they ride with
        // a Docker identity token: a group taken away at the provider ends with the token at the latest.
        if (principal.groups?.length) await meta.setAccessTokenGroups(tx, principal.name, name, principal.groups, expiresAt);
        return true;
      });
      if (!made) throw new OciError('UNAVAILABLE', 'the personal access token could not be made; try again');
      deps.logger.info({ user: principal.name, issuer: client.issuer, token: name }, 'signed in to the CLI through the OpenID Provider');
      return { access_token: token, issued_token_type: PERSONAL_ACCESS_TOKEN_TYPE, token_type: 'N_A', username: principal.name, token_name: name, expires_in: Math.floor(ttlMs / 1000) };
    },
  };
}
