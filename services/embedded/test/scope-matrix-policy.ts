/**
 * The scope matrix's expectations, written out by hand: who holds what (from the grants the test makes), what each
 * request needs, and therefore what each cell must answer. Nothing here is derived from the code under test.
 */

/** What a cell can come to. `mounted` and `upload` are the two allowed outcomes of a mount request. */
export type Outcome = 'allow' | 'deny' | 'mounted' | 'upload';

export type Namespace = 'team' | 'public' | 'secret';
export type Action = 'pull' | 'push' | 'delete';
export type Repo = 'team/app' | 'public/app';

/** Tokens forged or altered to probe the gateway's verification. */
export type Forgery =
  | 'expired'
  | 'expired-in-leeway'
  | 'not-yet-valid'
  | 'nbf-in-leeway'
  | 'wrong-audience'
  | 'wrong-issuer'
  | 'tampered'
  | 'alg-none'
  | 'hs256-public-key'
  | 'embedded-jwk'
  | 'unknown-kid'
  | 'forged-signature';

/** Where a principal's tokens come from. */
export type TokenSource =
  /** Never sends a token (a client that does not follow the challenge). */
  | { kind: 'none' }
  /** The token endpoint without credentials. */
  | { kind: 'anonymous' }
  /** The token endpoint with Basic credentials; `secret` names a secret made while seeding (robot secret, PAT). */
  | { kind: 'basic'; user: string; password?: string; secret?: string }
  /** A genuine admin token for exactly the scope asked, then altered or forged. */
  | { kind: 'forged'; forgery: Forgery }
  /** A genuine admin token, but for other repositories than the ones the request names. */
  | { kind: 'other-repo' };

/** The actions a principal holds per namespace, and the catalog; null when it can present no valid token at all. */
export type Holdings = ({ [ns in Namespace]?: Action[] } & { catalog?: boolean }) | null;

export interface PrincipalSpec {
  name: string;
  source: TokenSource;
  holds: Holdings;
}

const ALL: Action[] = ['pull', 'push', 'delete'];
const ADMIN: Holdings = { team: ALL, public: ALL, secret: ALL, catalog: true };

/** The rows of the matrix. The grants behind `holds` are made by the spec's seeding, through the admin API. */
export const PRINCIPALS: PrincipalSpec[] = [
  { name: 'no-token', source: { kind: 'none' }, holds: null },
  { name: 'anonymous', source: { kind: 'anonymous' }, holds: { public: ['pull'] } },
  { name: 'reader', source: { kind: 'basic', user: 'reader', password: 'reader-password' }, holds: { team: ['pull'], public: ['pull'] } },
  { name: 'pusher', source: { kind: 'basic', user: 'pusher', password: 'pusher-password' }, holds: { team: ['pull', 'push'], public: ['pull', 'push'] } },
  { name: 'pusher-pat', source: { kind: 'basic', user: 'pusher', secret: 'pusher-pat' }, holds: { team: ['pull', 'push'], public: ['pull', 'push'] } },
  { name: 'deleter', source: { kind: 'basic', user: 'deleter', password: 'deleter-password' }, holds: { team: ['pull', 'delete'], public: ['pull'] } },
  { name: 'admin', source: { kind: 'basic', user: 'boss', password: 'boss-password' }, holds: ADMIN },
  { name: 'robot', source: { kind: 'basic', user: 'robot$ci', secret: 'robot$ci' }, holds: { team: ['pull', 'push'], public: ['pull'] } },
  { name: 'robot-revoked', source: { kind: 'basic', user: 'robot$gone', secret: 'robot$gone' }, holds: null },
  { name: 'robot-expired', source: { kind: 'basic', user: 'robot$old', secret: 'robot$old' }, holds: null },
  { name: 'user-disabled', source: { kind: 'basic', user: 'dora', password: 'dora-password' }, holds: null },
  { name: 'tok-expired', source: { kind: 'forged', forgery: 'expired' }, holds: null },
  { name: 'tok-exp-leeway', source: { kind: 'forged', forgery: 'expired-in-leeway' }, holds: ADMIN },
  { name: 'tok-not-yet-valid', source: { kind: 'forged', forgery: 'not-yet-valid' }, holds: null },
  { name: 'tok-nbf-leeway', source: { kind: 'forged', forgery: 'nbf-in-leeway' }, holds: ADMIN },
  { name: 'tok-wrong-aud', source: { kind: 'forged', forgery: 'wrong-audience' }, holds: null },
  { name: 'tok-wrong-iss', source: { kind: 'forged', forgery: 'wrong-issuer' }, holds: null },
  { name: 'tok-other-repo', source: { kind: 'other-repo' }, holds: {} },
  { name: 'tok-tampered', source: { kind: 'forged', forgery: 'tampered' }, holds: null },
  { name: 'tok-alg-none', source: { kind: 'forged', forgery: 'alg-none' }, holds: null },
  { name: 'tok-hs256-pubkey', source: { kind: 'forged', forgery: 'hs256-public-key' }, holds: null },
  { name: 'tok-embedded-jwk', source: { kind: 'forged', forgery: 'embedded-jwk' }, holds: null },
  { name: 'tok-unknown-kid', source: { kind: 'forged', forgery: 'unknown-kid' }, holds: null },
  { name: 'tok-forged-sig', source: { kind: 'forged', forgery: 'forged-signature' }, holds: null },
];

/** What a request needs, in the policy's terms. */
export type Need =
  /** Any valid token. */
  | { kind: 'token' }
  | { kind: 'catalog' }
  /** An action on the column's repository. */
  | { kind: 'action'; action: Action }
  /** Another principal's upload session: never usable by anyone. */
  | { kind: 'never' }
  /** A mount into the column's repository: push there, and pull on the source to mount rather than upload. */
  | { kind: 'mount'; from: Namespace | null };

/** The request kinds of the columns (the spec turns each into a concrete request). */
export type RequestKind =
  | 'base'
  | 'base-head'
  | 'catalog'
  | 'catalog-head'
  | 'tags'
  | 'tags-head'
  | 'manifest-get-tag'
  | 'manifest-head-tag'
  | 'manifest-get-digest'
  | 'manifest-head-digest'
  | 'manifest-put-tag'
  | 'manifest-put-digest'
  | 'manifest-delete-tag'
  | 'manifest-delete-digest'
  | 'blob-get'
  | 'blob-head'
  | 'blob-delete'
  | 'upload-start'
  | 'own-upload-get'
  | 'own-upload-head'
  | 'own-upload-patch'
  | 'own-upload-put'
  | 'own-upload-delete'
  | 'other-upload-get'
  | 'other-upload-head'
  | 'other-upload-patch'
  | 'other-upload-put'
  | 'other-upload-delete'
  | 'mount-from-unreadable'
  | 'mount-from-readable'
  | 'mount-without-from'
  | 'referrers'
  | 'referrers-head';

export interface Column {
  kind: RequestKind;
  repo?: Repo;
  label: string;
  need: Need;
  /** The status of an allowed request (mount columns: 201 mounted, 202 upload). */
  okStatus: number;
}

const REPO_COLUMNS: Array<Omit<Column, 'repo'>> = [
  { kind: 'tags', label: 'GET    tags/list', need: { kind: 'action', action: 'pull' }, okStatus: 200 },
  { kind: 'tags-head', label: 'HEAD   tags/list', need: { kind: 'action', action: 'pull' }, okStatus: 200 },
  { kind: 'manifest-get-tag', label: 'GET    manifests/<tag>', need: { kind: 'action', action: 'pull' }, okStatus: 200 },
  { kind: 'manifest-head-tag', label: 'HEAD   manifests/<tag>', need: { kind: 'action', action: 'pull' }, okStatus: 200 },
  { kind: 'manifest-get-digest', label: 'GET    manifests/<digest>', need: { kind: 'action', action: 'pull' }, okStatus: 200 },
  { kind: 'manifest-head-digest', label: 'HEAD   manifests/<digest>', need: { kind: 'action', action: 'pull' }, okStatus: 200 },
  { kind: 'manifest-put-tag', label: 'PUT    manifests/<tag>', need: { kind: 'action', action: 'push' }, okStatus: 201 },
  { kind: 'manifest-put-digest', label: 'PUT    manifests/<digest>', need: { kind: 'action', action: 'push' }, okStatus: 201 },
  { kind: 'manifest-delete-tag', label: 'DELETE manifests/<tag>', need: { kind: 'action', action: 'delete' }, okStatus: 202 },
  { kind: 'manifest-delete-digest', label: 'DELETE manifests/<digest>', need: { kind: 'action', action: 'delete' }, okStatus: 202 },
  { kind: 'blob-get', label: 'GET    blobs/<digest>', need: { kind: 'action', action: 'pull' }, okStatus: 200 },
  { kind: 'blob-head', label: 'HEAD   blobs/<digest>', need: { kind: 'action', action: 'pull' }, okStatus: 200 },
  { kind: 'blob-delete', label: 'DELETE blobs/<digest>', need: { kind: 'action', action: 'delete' }, okStatus: 202 },
  { kind: 'upload-start', label: 'POST   blobs/uploads/', need: { kind: 'action', action: 'push' }, okStatus: 202 },
  { kind: 'own-upload-get', label: 'GET    own upload session', need: { kind: 'action', action: 'push' }, okStatus: 204 },
  { kind: 'own-upload-head', label: 'HEAD   own upload session', need: { kind: 'action', action: 'push' }, okStatus: 204 },
  { kind: 'own-upload-patch', label: 'PATCH  own upload session', need: { kind: 'action', action: 'push' }, okStatus: 202 },
  { kind: 'own-upload-put', label: 'PUT    own upload session', need: { kind: 'action', action: 'push' }, okStatus: 201 },
  { kind: 'own-upload-delete', label: 'DELETE own upload session', need: { kind: 'action', action: 'push' }, okStatus: 204 },
  { kind: 'other-upload-get', label: "GET    another's upload session", need: { kind: 'never' }, okStatus: 204 },
  { kind: 'other-upload-head', label: "HEAD   another's upload session", need: { kind: 'never' }, okStatus: 204 },
  { kind: 'other-upload-patch', label: "PATCH  another's upload session", need: { kind: 'never' }, okStatus: 202 },
  { kind: 'other-upload-put', label: "PUT    another's upload session", need: { kind: 'never' }, okStatus: 201 },
  { kind: 'other-upload-delete', label: "DELETE another's upload session", need: { kind: 'never' }, okStatus: 204 },
  { kind: 'mount-from-unreadable', label: 'POST   mount from=secret/app', need: { kind: 'mount', from: 'secret' }, okStatus: 201 },
  { kind: 'mount-from-readable', label: 'POST   mount from=public/src', need: { kind: 'mount', from: 'public' }, okStatus: 201 },
  { kind: 'mount-without-from', label: 'POST   mount without from', need: { kind: 'mount', from: null }, okStatus: 201 },
  { kind: 'referrers', label: 'GET    referrers/<digest>', need: { kind: 'action', action: 'pull' }, okStatus: 200 },
  { kind: 'referrers-head', label: 'HEAD   referrers/<digest>', need: { kind: 'action', action: 'pull' }, okStatus: 200 },
];

/** The columns: the registry-wide routes, then every repository route and method on a private and a public repository. */
export const COLUMNS: Column[] = [
  { kind: 'base', label: 'GET    /v2/', need: { kind: 'token' }, okStatus: 200 },
  { kind: 'base-head', label: 'HEAD   /v2/', need: { kind: 'token' }, okStatus: 200 },
  { kind: 'catalog', label: 'GET    /v2/_catalog', need: { kind: 'catalog' }, okStatus: 200 },
  { kind: 'catalog-head', label: 'HEAD   /v2/_catalog', need: { kind: 'catalog' }, okStatus: 200 },
  ...(['team/app', 'public/app'] as Repo[]).flatMap((repo) => REPO_COLUMNS.map((c) => ({ ...c, repo }))),
];

/** The expected outcome of one cell, from the policy alone. */
export function expectedOutcome(principal: PrincipalSpec, column: Column): Outcome {
  const holds = principal.holds;
  if (!holds) return 'deny';
  const has = (ns: Namespace, action: Action) => holds[ns]?.includes(action) ?? false;
  const ns = column.repo ? (column.repo.split('/')[0] as Namespace) : null;
  const need = column.need;
  switch (need.kind) {
    case 'token':
      return 'allow';
    case 'catalog':
      return holds.catalog ? 'allow' : 'deny';
    case 'action':
      return ns && has(ns, need.action) ? 'allow' : 'deny';
    case 'never':
      return 'deny';
    case 'mount':
      if (!ns || !has(ns, 'push')) return 'deny';
      // Without `from` the registry cannot check that the source is readable: it is a plain upload for everyone.
      return need.from && has(need.from, 'pull') ? 'mounted' : 'upload';
  }
}
