/**
 * Workload identity: a CI job (GitHub Actions, GitLab CI, any issuer of OpenID Connect ID tokens) trades the ID
 * token its platform gives it for a short-lived registry token, at `POST /token` with the OAuth 2.0 token exchange
 * grant (RFC 8693), so that CI stores no registry secret.
 *
 * A token is accepted under a trust rule of `auth.workloadIdentity` when its signature verifies against the JWKS of
 * the rule's issuer (found by discovery), its `iss` is the rule's issuer, its `aud` names the rule's audience, it is
 * within its lifetime, and every claim the rule lists matches (exactly, or as a glob where `*` matches any run of
 * characters). The registry token it buys speaks for `wi$<rule>` and holds the intersection of what was asked and
 * what the rule grants, for the rule's `tokenTtl`. Each token (by issuer and `jti`) is exchanged once: a replay
 * within its lifetime is refused.
 */
import { type WorkloadIdentityRule, durationMs } from '@lading/config';
import type { Access } from '@lading/access';
import * as meta from '@lading/metadata';
import type { SqlExecutor } from '@lading/metadata';
import { OciError } from '@lading/oci';
import type { Logger } from '@lading/telemetry';
import { ROLE_ACTIONS } from './access-policy';
import { IssuerVerifier, OidcError, VerifiedClaims } from './oidc-client';

/** The grant type of RFC 8693 token exchange. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** The subject token types accepted: an OpenID Connect ID token, or a JWT. */
export const SUBJECT_TOKEN_TYPES = ['urn:ietf:params:oauth:token-type:id_token', 'urn:ietf:params:oauth:token-type:jwt'];
/** How the subject of a workload identity token starts (as `robot$` starts a robot's). */
export const WORKLOAD_PREFIX = 'wi$';

/** What an accepted exchange is worth: who the registry token speaks for, what it holds, for how long. */
export interface WorkloadGrant {
  /** `wi$<rule>`. */
  subject: string;
  access: Access[];
  tokenTtlMs: number;
}

/** Exchanges workload identity tokens under the configured rules. */
export interface WorkloadIdentity {
  /** The grant of an ID token under the first rule that accepts it; 401 when none does, or it was used before. */
  exchange(subjectToken: string, requested: Access[]): Promise<WorkloadGrant>;
}

/** What workload identity is built from. */
export interface WorkloadIdentityDeps {
  db: SqlExecutor;
  rules: readonly WorkloadIdentityRule[];
  /** The verifier of an issuer's tokens (one per issuer, kept: it caches the issuer's keys). */
  verifierFor(issuer: string): IssuerVerifier;
  logger: Logger;
}

/** Whether a claim's value matches a rule's pattern: exactly, or as a glob where `*` matches any run of characters. */
export function claimMatches(value: unknown, pattern: string): boolean {
  if (typeof value !== 'string') return false;
  if (!pattern.includes('*')) return value === pattern;
  const regex = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
  return regex.test(value);
}

/** The requested access a rule's grants allow, scope by scope (a refused scope keeps no actions; no registry scopes). */
export function ruleAccess(rule: WorkloadIdentityRule, requested: readonly Access[]): Access[] {
  const allowed: Access[] = [];
  for (const access of requested) {
    if (access.type !== 'repository') continue;
    const held = new Set<string>();
    for (const grant of rule.grants) {
      if (access.name === grant.namespace || access.name.startsWith(`${grant.namespace}/`)) for (const action of ROLE_ACTIONS[grant.role]) held.add(action);
    }
    allowed.push({ type: 'repository', name: access.name, actions: held.has('*') ? access.actions : access.actions.filter((a) => held.has(a)) });
  }
  return allowed;
}

/** The `iss` of a JWT as it claims it, unverified: only to choose the rules that may verify it. */
function claimedIssuer(token: string): string | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, unknown>;
    return typeof claims.iss === 'string' ? claims.iss : null;
  } catch {
    return null;
  }
}

/** Creates the exchange of workload identity tokens. */
export function createWorkloadIdentity(deps: WorkloadIdentityDeps): WorkloadIdentity {
  return {
    async exchange(subjectToken, requested) {
      const issuer = claimedIssuer(subjectToken);
      if (!issuer) throw new OciError('UNAUTHORIZED', 'the subject token is not a well-formed JWT');
      const candidates = deps.rules.filter((rule) => rule.issuer === issuer);
      if (candidates.length === 0) throw new OciError('UNAUTHORIZED', 'no workload identity rule trusts the issuer of this token');
      const reasons: string[] = [];
      for (const rule of candidates) {
        let claims: VerifiedClaims;
        try {
          claims = await deps.verifierFor(rule.issuer).verify(subjectToken, { audience: rule.audience });
        } catch (err) {
          if (!(err instanceof OidcError)) throw err;
          reasons.push(err.message);
          continue;
        }
        const mismatch = Object.entries(rule.claims).find(([name, pattern]) => !claimMatches(claims[name], pattern));
        if (mismatch) {
          reasons.push(`the ${mismatch[0]} claim does not match rule ${rule.name}`);
          continue;
        }
        if (typeof claims.jti !== 'string' || claims.jti === '') throw new OciError('UNAUTHORIZED', 'the subject token carries no jti, so its reuse could not be told');
        if (!(await meta.recordWorkloadTokenUse(deps.db, issuer, claims.jti, new Date(claims.exp * 1000)))) {
          deps.logger.warn({ rule: rule.name, issuer }, 'a workload identity token was presented again; refused');
          throw new OciError('UNAUTHORIZED', 'this workload identity token has already been exchanged');
        }
        deps.logger.info({ rule: rule.name, issuer, subject: claims.sub }, 'exchanged a workload identity token');
        return { subject: `${WORKLOAD_PREFIX}${rule.name}`, access: ruleAccess(rule, requested), tokenTtlMs: durationMs(rule.tokenTtl) };
      }
      // One reason suffices when one rule was tried; several rules of one issuer say each.
      throw new OciError('UNAUTHORIZED', `workload identity token refused: ${[...new Set(reasons)].join('; ')}`);
    },
  };
}
