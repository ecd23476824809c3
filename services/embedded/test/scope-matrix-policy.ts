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
  // Namespace admins (issue 24): `admin` on a namespace is every action there, and no catalog.
  { name: 'team-admin', source: { kind: 'basic', user: 'tina', password: 'tina-password' }, holds: { team: ALL, public: ['pull'] } },
  { name: 'other-admin', source: { kind: 'basic', user: 'sam', password: 'sam-password' }, holds: { secret: ALL, public: ['pull'] } },
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

/**
 * The admin API's half of the matrix (issue 24): who may call each admin route, written out by hand from the issue
 * (global admins everything; a namespace admin its namespace's grants, robots, webhooks, tag rules and repository
 * audit; everything else global only), not read from admin-authorization.ts. Keys are `METHOD path` under
 * /admin/v1, as the route table names them: the spec fails on a route of the table that is missing here.
 *  - `global`: global admins only;
 *  - `namespace`: also the admins of the namespace the request acts on (the matrix's requests act on `team`);
 *  - `listing`: also any namespace admin, who is shown only what it administers.
 */
export type AdminAccess = 'global' | 'namespace' | 'listing';

export const ADMIN_ROUTE_ACCESS: Record<string, AdminAccess> = {
  'GET /users': 'global',
  'POST /users': 'global',
  'PUT /users/:name/password': 'global',
  'POST /users/:name/disable': 'global',
  'POST /users/:name/enable': 'global',
  'DELETE /users/:name': 'global',
  'GET /users/:name/tokens': 'global',
  'POST /users/:name/tokens': 'global',
  'DELETE /users/:name/tokens/:token': 'global',
  'GET /robots': 'listing',
  'POST /robots': 'namespace',
  'DELETE /robots/:name': 'namespace',
  'GET /namespaces': 'listing',
  'POST /namespaces': 'global',
  'PATCH /namespaces': 'namespace',
  'DELETE /namespaces': 'global',
  'POST /grants': 'namespace',
  'DELETE /grants': 'namespace',
  'GET /webhooks/': 'listing',
  'POST /webhooks/': 'namespace',
  'GET /webhooks/:id': 'namespace',
  'PATCH /webhooks/:id': 'namespace',
  'DELETE /webhooks/:id': 'namespace',
  'POST /webhooks/:id/rotate': 'namespace',
  'GET /webhooks/:id/deliveries': 'namespace',
  'GET /webhooks/:id/deliveries/:deliveryId': 'namespace',
  'POST /webhooks/:id/deliveries/:deliveryId/redeliver': 'namespace',
  'POST /webhooks/:id/ping': 'namespace',
  'GET /outbox/parked': 'global',
  'POST /outbox/parked/:id/requeue': 'global',
  'GET /quotas/': 'global',
  'PUT /quotas/*namespace': 'global',
  'DELETE /quotas/*namespace': 'global',
  'GET /usage/': 'global',
  'GET /usage/*namespace': 'global',
  'GET /audit/': 'namespace',
  'GET /proxies/': 'global',
  'PUT /proxies/*namespace': 'global',
  'DELETE /proxies/*namespace': 'global',
  'GET /gc/status': 'global',
  'GET /gc/dry-run': 'global',
  'POST /gc/collect': 'global',
  'GET /backup/': 'global',
  'DELETE /repositories/^\\/(.+)$/': 'global',
  'POST /keys/rotate': 'global',
};

/** What an admin cell can come to: allowed, allowed but showing nothing of `team` (a listing), or refused. */
export type AdminOutcome = 'allow' | 'filtered' | 'deny';

/** The rows of the admin matrix: what kind of caller, and how it signs in. */
export interface AdminPrincipalSpec {
  name: string;
  kind: 'global-admin' | 'team-admin' | 'other-admin' | 'user' | 'robot' | 'anonymous';
  /** Basic credentials (`secret` names one made while seeding), the console session of a user, or nothing. */
  auth: { kind: 'basic'; user: string; password?: string; secret?: string } | { kind: 'session'; user: string; password: string } | { kind: 'none' };
}

export const ADMIN_PRINCIPALS: AdminPrincipalSpec[] = [
  { name: 'global-admin', kind: 'global-admin', auth: { kind: 'basic', user: 'boss', password: 'boss-password' } },
  { name: 'global-admin-session', kind: 'global-admin', auth: { kind: 'session', user: 'boss', password: 'boss-password' } },
  { name: 'team-admin', kind: 'team-admin', auth: { kind: 'basic', user: 'tina', password: 'tina-password' } },
  { name: 'team-admin-session', kind: 'team-admin', auth: { kind: 'session', user: 'tina', password: 'tina-password' } },
  { name: 'other-admin', kind: 'other-admin', auth: { kind: 'basic', user: 'sam', password: 'sam-password' } },
  { name: 'user', kind: 'user', auth: { kind: 'basic', user: 'pusher', password: 'pusher-password' } },
  { name: 'user-session', kind: 'user', auth: { kind: 'session', user: 'pusher', password: 'pusher-password' } },
  { name: 'robot', kind: 'robot', auth: { kind: 'basic', user: 'robot$ci', secret: 'robot$ci' } },
  { name: 'anonymous', kind: 'anonymous', auth: { kind: 'none' } },
];

/** The expected outcome of one admin cell (every request acts on `team`, or on nothing in particular). */
export function expectedAdminOutcome(principal: AdminPrincipalSpec, access: AdminAccess): AdminOutcome {
  switch (principal.kind) {
    case 'global-admin':
      return 'allow';
    case 'team-admin':
      return access === 'global' ? 'deny' : 'allow';
    case 'other-admin':
      return access === 'listing' ? 'filtered' : 'deny';
    default:
      return 'deny';
  }
}
