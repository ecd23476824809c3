/** The one configuration schema every Lading process reads: defaults, types and limits in one place. */
import { z } from 'zod';
import { parseAllowListEntry } from './allow-list-entry';
import { DURATION, durationMs } from './duration';


const duration = z.string().regex(DURATION, 'a duration such as 500ms, 30s, 5m, 24h or 30d');

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'host:port');

/** A `webhooks.allowList` entry, refused with the reason the grammar gives. */
const allowListEntry = z.string().superRefine((entry, ctx) => {
  try {
    parseAllowListEntry(entry);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** A secrets key: the base64 of 32 random bytes (`openssl rand -base64 32`). */
const secretsKey = z.string().refine((k) => /^[A-Za-z0-9+/]{43}=$/.test(k.trim()) && Buffer.from(k.trim(), 'base64').length === 32, 'the base64 of 32 bytes (openssl rand -base64 32)');

/**
 * An LDAP directory users sign in with (`auth.ldap`): the service account searches for the user, the user's DN is
 * bound with the password sent, and the groups holding the user (nested ones too when `nestedGroups`) are read.
 * The bind password comes from `bindPassword` or the file `bindPasswordFile`; it is never logged or stored.
 */
const ldapSettings = z
  .object({
    /** `ldap://host[:port]` or `ldaps://host[:port]`. */
    url: z
      .string()
      .url()
      .refine((u) => /^ldaps?:$/.test(new URL(u).protocol), 'an ldap:// or ldaps:// URL'),
    /** Upgrades an ldap:// connection with StartTLS before anything is sent (refused for ldaps://, already TLS). */
    startTls: z.boolean().default(false),
    /** A PEM file of the CA certificates that sign the directory's certificate (else the system's). */
    caFile: z.string().min(1).optional(),
    /** The service account that searches; anonymous search when unset. */
    bindDn: z.string().min(1).optional(),
    bindPassword: z.string().min(1).optional(),
    /** A file holding the service account's password (surrounding white space trimmed), instead of `bindPassword`. */
    bindPasswordFile: z.string().min(1).optional(),
    /** Where users are searched (subtree). */
    userBase: z.string().min(1),
    /** The user search; `{username}` is replaced by the username, escaped as RFC 4515 says. */
    userFilter: z.string().includes('{username}', { message: 'must contain {username}' }).default('(uid={username})'),
    /** The attribute whose value becomes the Lading user name (the name sent must match it, case aside). */
    usernameAttribute: z.string().min(1).default('uid'),
    /** Where groups are searched (subtree); no groups are read when unset. */
    groupBase: z.string().min(1).optional(),
    /** The group search; `{dn}` is the member's DN and `{username}` the username, both escaped (RFC 4515). */
    groupFilter: z.string().default('(member={dn})'),
    /** The attribute whose value names a group in grants (`group:<name>`). */
    groupNameAttribute: z.string().min(1).default('cn'),
    /** Also the groups that hold the user's groups, and so on (at most `maxGroupDepth` levels; cycles are cut). */
    nestedGroups: z.boolean().default(true),
    maxGroupDepth: z.number().int().positive().max(32).default(8),
    /** Longest a connect, bind or search may take before the directory counts as down. */
    timeout: duration.default('5s'),
    /** How long a successful directory sign-in is remembered (so pulls go on through a short outage); 0s: never. */
    cacheTtl: duration.default('5m'),
    /** How long a refused one is remembered (a wrong password is not sent to the directory again meanwhile). */
    negativeCacheTtl: duration.default('30s'),
  })
  .strict()
  .refine((l) => l.bindPassword === undefined || l.bindPasswordFile === undefined, { message: 'set bindPassword or bindPasswordFile, not both', path: ['bindPasswordFile'] })
  .refine((l) => !(l.startTls && l.url.startsWith('ldaps:')), { message: 'startTls is for ldap:// URLs (ldaps:// is TLS already)', path: ['startTls'] });

/** A repository-name prefix: path components of the OCI name grammar joined by `/` (what `namespaces` name too). */
const NAMESPACE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;

/**
 * A pull-through cache: repositories under `namespace` are fetched from `upstream` on a miss and kept as ordinary
 * content. The upstream is fixed here, by the operator (a loopback or private one is their choice); no request can
 * name another. `username`/`password` never leave the server (the logger redacts `password` at any depth).
 */
const proxyRule = z
  .object({
    /** The local namespace: `<namespace>/<path>` is fetched as `<upstream>/v2/<path>`. */
    namespace: z.string().regex(NAMESPACE, 'a repository-name prefix such as hub or cache/ghcr'),
    /** The upstream registry's base URL, http or https, without a path (e.g. https://registry-1.docker.io). */
    upstream: z
      .string()
      .url()
      .refine((u) => /^https?:$/.test(new URL(u).protocol), 'an http:// or https:// URL')
      .refine((u) => {
        const url = new URL(u);
        return (url.pathname === '/' || url.pathname === '') && !url.search && !url.hash && !url.username && !url.password;
      }, 'a base URL without path, query or credentials (set username and password instead)'),
    /** Credentials for the upstream (Basic, or for its token service); anonymous when unset. */
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    /** How long a cached tag is trusted before it is checked upstream again (with a HEAD). */
    tagTtl: duration.default('10m'),
    /**
     * Content of this cache not pulled for this long (e.g. `30d`) is evicted by the collector: its manifests and
     * tags are deleted as ordinary deletes (with their events), and their blobs become garbage. Never when unset.
     */
    evictAfter: duration.optional(),
  })
  .strict()
  .refine((p) => (p.username === undefined) === (p.password === undefined), { message: 'username and password go together', path: ['password'] });

/** An https URL, or http on a loopback host (tests, a provider on the same machine). */
const issuerUrl = z
  .string()
  .url()
  .refine((u) => {
    const url = new URL(u);
    return url.protocol === 'https:' || (url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname));
  }, 'an https:// URL (http:// only on a loopback host)');

/**
 * Browser sign-in with an OpenID Provider. The client secret comes from `clientSecret` or a file
 * (`clientSecretFile`, e.g. a mounted Kubernetes secret), never both; a public client (PKCE alone) sets neither.
 */
const oidcSettings = z
  .object({
    /** The issuer (its discovery document is `<issuer>/.well-known/openid-configuration`). */
    issuer: issuerUrl,
    clientId: z.string().min(1),
    /**
     * A second, public client at the provider with the device authorization grant (RFC 8628), for
     * `lading-admin login`; the CLI sign-in is off when unset.
     */
    cliClientId: z.string().min(1).optional(),
    clientSecret: z.string().min(1).optional(),
    clientSecretFile: z.string().min(1).optional(),
    /** Where the provider sends the browser back; defaults to `<http.host>/ui/api/oidc/callback`. */
    redirectUrl: z.string().url().optional(),
    scopes: z.array(z.string().regex(/^[^\s"\\]+$/, 'a scope token')).default(['openid', 'profile', 'email']),
    /** The ID token claim that names the user (a JIT user gets this name). */
    usernameClaim: z.string().min(1).default('preferred_username'),
    /** The ID token claim that lists the user's groups (a list of strings, or one string). */
    groupsClaim: z.string().min(1).default('groups'),
    /** When non-empty, only users whose verified e-mail is in one of these domains may sign in. */
    allowedDomains: z.array(z.string().min(1)).default([]),
    /** When non-empty, only users in at least one of these groups may sign in. */
    allowedGroups: z.array(z.string().min(1)).default([]),
  })
  .strict()
  .refine((o) => o.clientSecret === undefined || o.clientSecretFile === undefined, { message: 'set clientSecret or clientSecretFile, not both', path: ['clientSecretFile'] });

/** One claim condition of a workload identity rule: an exact value, or a glob where `*` matches any run of characters. */
const claimPattern = z.string().min(1);

/**
 * A workload identity trust rule: an ID token from `issuer` for `audience` whose claims match `claims` is exchanged
 * for a registry token holding at most `grants`, for `tokenTtl`.
 */
const workloadIdentityRule = z
  .object({
    /** The rule's name: the token's subject is `wi$<name>`. */
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'lowercase letters, digits, ".", "_" and "-"'),
    issuer: issuerUrl,
    audience: z.string().min(1),
    /** Claims the token must carry, by name: each an exact value or a glob (`refs/heads/*`). */
    claims: z.record(z.string(), claimPattern).default({}),
    grants: z
      .array(z.object({ namespace: z.string().regex(NAMESPACE, 'a repository-name prefix'), role: z.enum(['pull', 'push', 'delete', 'admin']) }).strict())
      .min(1),
    tokenTtl: duration.default('5m'),
  })
  .strict();

/**
 * Why a proxy namespace cannot stand beside the namespaces already proxied, or null when it can: the same namespace
 * twice, or one nested in another (a repository would then lie in two caches). The one check of the config's
 * `proxies` and of the admin API's stored rules.
 */
export function proxyNamespaceConflict(namespace: string, others: readonly string[]): string | null {
  for (const other of others) {
    if (namespace === other) return `namespace ${namespace} is proxied twice`;
    if (namespace.startsWith(`${other}/`)) return `namespace ${namespace} is nested in the proxied namespace ${other}`;
    if (other.startsWith(`${namespace}/`)) return `namespace ${namespace} holds the proxied namespace ${other}`;
  }
  return null;
}

/** A proxy rule checked alone (the admin API's input): the rule with its defaults, or its problems as `key: message`. */
export type ProxyRuleCheck = { ok: true; rule: ProxyConfig } | { ok: false; problems: string[] };

/**
 * Checks one proxy rule as `proxies[]` would (http(s) base URL without path, query or credentials; a repository-name
 * prefix; username and password together; durations), and its namespace against `others` (see
 * proxyNamespaceConflict). The admin API stores only what passes here, so a stored rule is one the file could hold.
 */
export function checkProxyRule(input: unknown, others: readonly string[]): ProxyRuleCheck {
  const parsed = proxyRule.safeParse(input);
  if (!parsed.success) {
    const keyOf = (i: z.core.$ZodIssue) => [...i.path, ...(i.code === 'unrecognized_keys' ? i.keys : [])].join('.') || 'rule';
    return { ok: false, problems: parsed.error.issues.map((i) => `${keyOf(i)}: ${i.message}`) };
  }
  const conflict = proxyNamespaceConflict(parsed.data.namespace, others);
  return conflict ? { ok: false, problems: [`namespace: ${conflict}`] } : { ok: true, rule: parsed.data };
}

/**
 * The configuration object. Keys never contain `_`, so `LADING_A_B` maps mechanically onto `a.b`. Driver choices
 * left unset follow the mode: embedded → PGlite, filesystem, in-process bus; distributed → Postgres, S3, Kafka.
 */
export const configObject = z
  .object({
    mode: z.enum(['embedded', 'distributed']).default('embedded'),
    http: z
      .object({
        addr: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]*):\d{1,5}$/, 'host:port, e.g. 0.0.0.0:5000').default('0.0.0.0:5000'),
        /** The externally visible base URL, used in Location headers when set (else they are relative). */
        host: z.string().url().optional(),
        /**
         * How many reverse proxies stand between clients and this process (nginx, the gateway), each appending to
         * X-Forwarded-For; the client's address is taken that many hops from the right. 0 trusts no header.
         */
        trustedProxies: z.number().int().min(0).max(10).default(0),
        /** HTTPS on `addr` instead of plain HTTP: both files or neither; they are read again whenever they change. */
        tls: z
          .object({
            /** A PEM file with the server's certificate, followed by its chain when there is one. */
            certificate: z.string().min(1).optional(),
            /** A PEM file with the certificate's private key, unencrypted. */
            key: z.string().min(1).optional(),
          })
          .strict()
          .prefault({})
          .superRefine((t, ctx) => {
            if ((t.certificate === undefined) === (t.key === undefined)) return;
            ctx.addIssue({ code: 'custom', path: [t.certificate === undefined ? 'certificate' : 'key'], message: 'http.tls.certificate and http.tls.key go together' });
          }),
      })
      .strict()
      .prefault({}),
    server: z
      .object({
        /**
         * Worker threads of the embedded process that serve pulls on `http.addr` beside the main thread (each
         * listens on the same port, the kernel spreading connections over them), so that pull throughput grows with
         * the cores; the main thread keeps the database and every write. `auto` (the default) starts them while pulls
         * keep the main thread busy, up to the cores but one, and stops them after a quiet minute; a number runs that
         * many from the start; 0 none. Each costs ~35 MB of resident memory. Ignored by the distributed services.
         */
        readWorkers: z
          .preprocess((v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v), z.union([z.literal('auto'), z.number().int().min(0).max(64)], { error: 'auto, or a whole number from 0 to 64' }))
          .default('auto'),
      })
      .strict()
      .prefault({}),
    data: z
      .object({
        /** Where the embedded mode keeps its PGlite database and filesystem blobs. */
        dir: z.string().min(1).default('./data'),
      })
      .strict()
      .prefault({}),
    storage: z
      .object({
        driver: z.enum(['filesystem', 's3']).optional(),
        /** Root of the filesystem driver; defaults to `<data.dir>/blobs`. */
        root: z.string().min(1).optional(),
        /** The S3 (MinIO) endpoint, e.g. http://127.0.0.1:9000. */
        endpoint: z.string().url().optional(),
        accessKey: z.string().min(1).optional(),
        secretKey: z.string().min(1).optional(),
        bucket: z.string().min(3).default('lading'),
        region: z.string().min(1).default('us-east-1'),
        /** Answer blob GETs with a redirect to a presigned URL (S3 only); unset means on in distributed mode. */
        redirect: z.boolean().optional(),
        /** How long a presigned URL stays valid. */
        presignTtl: duration.default('5m'),
        /**
         * Flush to disk what the embedded registry acknowledges (default true): a pushed blob's file and directory
         * (filesystem driver) and each committed transaction of the PGlite database. Off, a power loss can lose or
         * corrupt acknowledged pushes and the database: for throwaway registries only (CI, scratch). S3 and
         * PostgreSQL keep their own durability and ignore it.
         */
        fsync: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    database: z
      .object({
        driver: z.enum(['pglite', 'postgres']).optional(),
        /** Directory of the PGlite database; defaults to `<data.dir>/metadata`. */
        path: z.string().min(1).optional(),
        /** Postgres connection URL (postgres driver). */
        url: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL').optional(),
        poolSize: z.number().int().positive().max(200).default(10),
        /** Longest a statement may run before it is cancelled. */
        statementTimeout: duration.default('30s'),
        /** Longest to wait for a connection before answering 503. */
        connectTimeout: duration.default('5s'),
        /**
         * What a process does with the schema at start-up: `auto` applies the pending migrations (under an advisory
         * lock, so replicas starting together apply each once); `verify` only checks that the schema is exactly this
         * release's and refuses to start otherwise, for deployments that run `lading-migrate` as a step of their
         * own (a Helm hook, a compose one-shot). Either way a schema newer than the release is refused.
         */
        migrations: z.enum(['auto', 'verify']).default('auto'),
        /**
         * How often the embedded registry vacuums and analyzes the PGlite tables that need it (PGlite has no
         * autovacuum); `0s` turns it off. The postgres driver ignores it: its server's autovacuum does this.
         */
        maintenanceInterval: duration.default('5m'),
      })
      .strict()
      .prefault({}),
    kafka: z
      .object({
        /** Bootstrap brokers, comma-separated in the environment. */
        brokers: z.array(hostPort).default([]),
        topic: z.string().min(1).default('lading.events'),
        partitions: z.number().int().positive().max(1000).default(6),
        clientId: z.string().min(1).default('lading'),
      })
      .strict()
      .prefault({}),
    upstreams: z
      .object({
        /** Base URLs of the blob service's replicas (distributed gateway). */
        blob: z.array(z.string().url()).default([]),
        /** Base URLs of the manifest service's replicas (distributed gateway). */
        manifest: z.array(z.string().url()).default([]),
        /** Base URLs of the auth service's replicas (distributed gateway). */
        auth: z.array(z.string().url()).default([]),
        /** Base URLs of the gc service's replicas (the distributed auth service: the admin API's `/admin/v1/gc`). */
        gc: z.array(z.string().url()).default([]),
        /** Longest the gateway waits for a service's response headers. */
        timeout: duration.default('30s'),
        /**
         * A secret the distributed gateway shares with the services behind it: the gateway signs the principal it
         * passes on with it, and a service believes only a principal so signed. Unset, a distributed registry's
         * events name no actor (the embedded mode needs none).
         */
        secret: z.string().min(32, 'at least 32 characters').optional(),
      })
      .strict()
      .prefault({}),
    auth: z
      .object({
        /** Docker token authentication on every /v2 route; off means anyone who reaches the port may do anything. */
        enabled: z.boolean().default(false),
        /** The token endpoint clients are sent to (the WWW-Authenticate realm); defaults to `<http.host>/token`. */
        realm: z.string().url().optional(),
        /** The audience of tokens, named `service` in the Docker token protocol. */
        service: z.string().min(1).default('lading'),
        issuer: z.string().min(1).default('lading-auth'),
        tokenTtl: duration.default('5m'),
        refreshTtl: duration.default('720h'),
        /** Where a distributed gateway fetches the signing keys (the auth service's JWKS). */
        jwksUrl: z.string().url().optional(),
        /**
         * Failed logins allowed within `loginWindow` for one account from one address before that pair gets 429
         * (a correct password from that address clears it; other addresses are not affected).
         */
        loginFailureLimit: z.number().int().positive().default(10),
        /** Failed logins allowed from one address within `loginWindow`, over every account, before it gets 429. */
        loginAddressLimit: z.number().int().positive().default(30),
        /** Failed logins allowed on one account within `loginWindow`, from every address, before it gets 429. */
        loginAccountLimit: z.number().int().positive().default(100),
        loginWindow: duration.default('15m'),
        /** Worker threads that hash passwords (argon2id) off the event loop; default: one per core but one, at least 1. */
        hashWorkers: z.number().int().positive().max(64).optional(),
        /** Password checks that may wait for a worker; beyond that a login gets 429 with Retry-After at once. */
        hashQueue: z.number().int().nonnegative().max(10_000).default(32),
        /** Sign-in with directory passwords (LDAP bind + search); off when unset. See docs/sign-in.md. */
        ldap: ldapSettings.optional(),
        /** Browser sign-in with an OpenID Provider (authorization code with PKCE); off when unset. See docs/oidc.md. */
        oidc: oidcSettings.optional(),
        /** CI systems' ID tokens exchanged at `/token` for short-lived registry tokens (YAML only). See docs/oidc.md. */
        workloadIdentity: z
          .array(workloadIdentityRule)
          .default([])
          .superRefine((rules, ctx) => {
            rules.forEach((rule, i) => {
              if (rules.slice(0, i).some((r) => r.name === rule.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `rule ${rule.name} is named twice` });
            });
          }),
      })
      .strict()
      .prefault({}),
    admin: z
      .object({
        /** The first admin, created at start-up when no admin exists (ignored, with a log line, once one does). */
        user: z.string().min(1).optional(),
        password: z.string().min(8).optional(),
      })
      .strict()
      .prefault({}),
    registry: z
      .object({
        /** Whether DELETE of manifests, tags and blobs is allowed (405 UNSUPPORTED when not). */
        deleteEnabled: z.boolean().default(true),
        /** Largest manifest accepted, in bytes. */
        manifestMaxBytes: z.number().int().positive().max(64 * 1024 * 1024).default(4 * 1024 * 1024),
        /** Largest page `n` honoured by tags/list and _catalog; larger requests are clamped. */
        maxPageSize: z.number().int().positive().max(100000).default(1000),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        /** Requests per second one client address may make at the gateway (token-bucket refill); 0 turns it off. */
        addressRate: z.number().nonnegative().max(1_000_000).default(0),
        /** Requests one client address may make at once above its rate (the bucket's size). */
        addressBurst: z.number().int().positive().max(1_000_000).default(500),
        /** Requests per second one authenticated principal may make at the gateway; 0 turns it off. */
        principalRate: z.number().nonnegative().max(1_000_000).default(0),
        /** Requests one principal may make at once above its rate (the bucket's size). */
        principalBurst: z.number().int().positive().max(1_000_000).default(1000),
        /** Largest request head (request line plus headers) in bytes; a larger one is answered 431 and closed. */
        maxHeaderBytes: z.number().int().min(1024).max(1024 * 1024).default(16 * 1024),
        /** Longest a client may take to send a request's head before the connection is closed (408). */
        headersTimeout: duration.default('20s'),
        /** Longest a request body may stay silent (no byte arriving) before the connection is cut. */
        bodyIdleTimeout: duration.default('60s'),
        /** How long an idle keep-alive connection is kept open. */
        keepAliveTimeout: duration.default('65s'),
        /** Bytes of manifests each process caches, by repository and digest (immutable, bounded LRU); 0 turns it off. */
        manifestCacheBytes: z.number().int().nonnegative().max(16 * 1024 * 1024 * 1024).default(64 * 1024 * 1024),
        /** Bytes of blob descriptors (repository, digest → size) each process caches; 0 turns it off. */
        blobCacheBytes: z.number().int().nonnegative().max(1024 * 1024 * 1024).default(8 * 1024 * 1024),
        /** The longest a cached tag → digest answer is served without looking again (behind event invalidation). */
        tagCacheTtl: duration.default('5s'),
        /** Verified bearer tokens each gateway remembers (until their expiry) instead of verifying the signature again. */
        tokenCacheEntries: z.number().int().nonnegative().max(1_000_000).default(10_000),
      })
      .strict()
      .prefault({}),
    gc: z
      .object({
        /** How long unreferenced content waits before the collector reviews it. */
        reviewDelay: duration.default('24h'),
        /** Allows review delays and upload TTLs under one minute (tests only: a short delay races slow clients). */
        allowShortDelay: z.boolean().default(false),
        /** Whether this process runs the collector (the gc service; the embedded registry runs one in-process). */
        enabled: z.boolean().default(true),
        /** Concurrent review loops per process (any number of processes may run them). */
        workers: z.number().int().positive().max(64).default(2),
        /** Upload sessions untouched this long are purged with their stored data. */
        uploadTtl: duration.default('24h'),
        /** The longest an idle collector sleeps before looking at the queues again (events wake it sooner). */
        pollInterval: duration.default('10s'),
        /** How often retention rules and the orphaned-referrer sweep run. */
        sweepInterval: duration.default('15m'),
        /**
         * How often namespace quota usage is counted afresh from the references (issue 23): pushes add to the counts,
         * deletes do not subtract, so this bounds how long freed room waits to be seen (a refused push counts afresh).
         */
        quotaReconcileInterval: duration.default('5m'),
        /**
         * A repository deletion deletes at most this many manifests (then blob links) per transaction, so that a
         * large repository never holds one giant transaction (docs/governance.md).
         */
        repositoryDeletionBatch: z.number().int().positive().max(100_000).default(1000),
        /**
         * How many of those batches the admin's request runs itself before it answers `202` and leaves the rest to
         * the collector (which also finishes any deletion a restart interrupted).
         */
        repositoryDeletionInlineBatches: z.number().int().nonnegative().max(10_000).default(10),
        /** The longest a collector transaction waits for a lock; it takes row locks NOWAIT and puts busy rows off. */
        lockTimeout: duration.default('200ms'),
        /** The longest one statement of a collector transaction may run. */
        statementTimeout: duration.default('10s'),
        /** Per-namespace rules (YAML only); the longest matching namespace applies, '' matches every repository. */
        policies: z
          .array(
            z
              .object({
                namespace: z.string(),
                /** Delete manifests that nothing tags, no kept index lists and that refer to no live subject. */
                deleteUntagged: z.boolean().default(true),
                /** Retention: keep the newest N tags (by last push) of each repository. */
                keepLast: z.number().int().nonnegative().optional(),
                /** Retention: tags not pushed for this long may go (with keepLast: only those beyond the newest N). */
                olderThan: duration.optional(),
                /**
                 * Retention by pulls: tags whose manifest has not been pulled for this long (counting from the tag's
                 * last push when that is later, or never pulled) may go, and so may untagged manifests (counting from
                 * their push when never pulled); with keepLast or olderThan, only what every rule lets go.
                 */
                notPulledFor: duration.optional(),
                /** Retention applies only to tags matching this regular expression (all tags when unset). */
                tagPattern: z
                  .string()
                  .refine((p) => {
                    try {
                      new RegExp(p);
                      return true;
                    } catch {
                      return false;
                    }
                  }, 'a regular expression')
                  .optional(),
                /** Retention only reports what it would delete (in the log, metrics and the dry-run report). */
                dryRun: z.boolean().default(false),
              })
              .strict(),
          )
          .default([]),
      })
      .strict()
      .prefault({})
      .refine((gc) => gc.allowShortDelay || !DURATION.test(gc.reviewDelay) || durationMs(gc.reviewDelay) >= 60_000, {
        message: 'review delays under one minute need gc.allowShortDelay=true',
        path: ['reviewDelay'],
      })
      .refine((gc) => gc.allowShortDelay || !DURATION.test(gc.uploadTtl) || durationMs(gc.uploadTtl) >= 60_000, {
        message: 'upload TTLs under one minute need gc.allowShortDelay=true',
        path: ['uploadTtl'],
      }),
    events: z
      .object({
        /** Publishing attempts after which an outbox row the bus refuses (never a bus outage) is parked for an admin. */
        maxAttempts: z.number().int().positive().max(1000).default(10),
        /** Published outbox rows older than this are pruned (the bus keeps the history for replay). */
        retention: duration.default('168h'),
        /** How often published outbox rows are pruned. */
        pruneInterval: duration.default('10m'),
        /**
         * Slices of the relay's work, each with its own advisory lock: exactly one relay publishes a slice at a time,
         * so a repository's events keep their order while several relays share the load.
         */
        relayPartitions: z.number().int().positive().max(256).default(8),
      })
      .strict()
      .prefault({}),
    audit: z
      .object({
        /**
         * Whether the audit trail is kept: logins, admin changes and (aggregated) pulls become `io.lading.audit.*`
         * events and rows of the queryable audit log (docs/audit.md). Changes of content have their events anyway.
         */
        enabled: z.boolean().default(true),
        /** How long pulls are counted in memory, per principal and repository, before one batch is written. */
        pullWindow: duration.default('10s'),
        /** Audit log rows older than this are pruned (with the outbox, every `events.pruneInterval`). */
        retention: duration.default('90d'),
      })
      .strict()
      .prefault({}),
    webhooks: z
      .object({
        /** Whether this process runs the delivery worker (the webhooks service; the embedded registry runs one in-process). */
        enabled: z.boolean().default(true),
        /**
         * Hosts, addresses or CIDR ranges, each optionally with `:port` (the exception then holds on that port only),
         * that subscriptions may target although they are loopback, private, link-local or cloud-metadata addresses
         * (refused otherwise, at creation and again at connect time). The grammar is `parseAllowListEntry`'s.
         */
        allowList: z.array(allowListEntry).default([]),
        /** Attempts before a delivery is dead-lettered. */
        maxAttempts: z.number().int().positive().max(1000).default(12),
        /** The longest a delivery is retried, counted from its first attempt, before it is dead-lettered. */
        maxAge: duration.default('24h'),
        /** The first retry's delay; each retry doubles it (with full jitter) up to `backoffMax`. */
        backoffInitial: duration.default('1s'),
        backoffMax: duration.default('10m'),
        /** The longest one delivery attempt may take, connect to last byte. */
        timeout: duration.default('10s'),
        /** Deliveries in flight at once per process. */
        concurrency: z.number().int().positive().max(256).default(8),
        /** The longest an idle worker sleeps before looking for due deliveries (new events wake it sooner). */
        pollInterval: duration.default('1s'),
      })
      .strict()
      .prefault({}),
    secrets: z
      .object({
        /**
         * The key that encrypts signing keys, webhook secrets and stored upstream passwords in the database
         * (AES-256-GCM): the base64 of 32 bytes.
         * Without it (and without `keyFile`) they are stored in plain text, which start-up says with a warning.
         */
        key: secretsKey.optional(),
        /** A file holding the key (its base64, as `key`), instead of `key`. */
        keyFile: z.string().min(1).optional(),
        /** Earlier keys, used only to read values stored under them; start-up encrypts those again under `key`. */
        previousKeys: z.array(secretsKey).default([]),
      })
      .strict()
      .prefault({})
      .refine((s) => s.key === undefined || s.keyFile === undefined, { message: 'set secrets.key or secrets.keyFile, not both', path: ['keyFile'] })
      .refine((s) => s.previousKeys.length === 0 || s.key !== undefined || s.keyFile !== undefined, {
        message: 'secrets.previousKeys needs a current secrets.key or secrets.keyFile to encrypt under',
        path: ['previousKeys'],
      }),
    /** Pull-through caches, one per namespace (YAML only: a list has no environment mapping). */
    proxies: z
      .array(proxyRule)
      .default([])
      .superRefine((rules, ctx) => {
        rules.forEach((rule, i) => {
          const conflict = proxyNamespaceConflict(rule.namespace, rules.slice(0, i).map((r) => r.namespace));
          if (conflict) ctx.addIssue({ code: 'custom', path: [i, 'namespace'], message: conflict });
        });
      }),
    /**
     * Docker's `registry-mirrors`: pulls of names in no proxy namespace that are no local repository
     * (`/v2/library/alpine/...`) are answered as `<mirror.namespace>/library/alpine`. The namespace names a proxy of
     * `proxies` or one stored through the admin API; it is checked at run time, not here (start-up warns when it names
     * no rule, and un-prefixed pulls are then served as written). Local repositories and every write keep the name as
     * written (services/gateway/src/mirror-namespace.ts).
     */
    mirror: z
      .object({
        namespace: z.string().regex(NAMESPACE, 'a repository-name prefix').optional(),
      })
      .strict()
      .prefault({}),
    telemetry: z
      .object({
        /**
         * Where this process serves its Prometheus metrics (`GET /metrics`), apart from the API port, or `off`. Each
         * process on one host needs its own port; a port already taken is logged and the process runs without it.
         */
        metricsAddr: z
          .string()
          .regex(/^(off|(\[[0-9a-fA-F:.]+\]|[^:\s]*):\d{1,5})$/, 'host:port, e.g. 127.0.0.1:9464, or off')
          .default('127.0.0.1:9464'),
      })
      .strict()
      .prefault({}),
    console: z
      .object({
        /** Whether the gateway serves the web console under `/ui/` (and redirects `/` there). */
        enabled: z.boolean().default(true),
        /**
         * The directory of the console's built files (`index.html`, `assets/`): relative paths are resolved against
         * the process's working directory. When it is missing, `/ui/` answers 503 naming it.
         */
        assets: z.string().min(1).default('dist/console'),
        /** How long a console session lasts from sign-in (not sliding: it ends then, whatever the activity). */
        sessionTtl: duration.default('8h'),
        /**
         * Whether the session cookie is marked `Secure` (browsers accept it on https and on http://localhost). Only a
         * console reached over plain http on another host needs false.
         */
        secureCookie: z.boolean().default(true),
        /** Live-feed (`/api/v1/events`) streams each process serves at once; one more is answered 429. */
        maxEventStreams: z.number().int().positive().max(100_000).default(100),
        /** Seconds between the feed's heartbeat comments. */
        heartbeat: duration.default('15s'),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        access: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** The configuration schema: the object, its cross-key rules, and driver choices resolved from the mode. */
export const configSchema = configObject
  .transform((c) => {
    const distributed = c.mode === 'distributed';
    return {
      ...c,
      storage: { ...c.storage, driver: c.storage.driver ?? (distributed ? 's3' : 'filesystem'), redirect: c.storage.redirect ?? distributed },
      database: { ...c.database, driver: c.database.driver ?? (distributed ? 'postgres' : 'pglite') },
    };
  })
  .superRefine((c, ctx) => {
    if (c.storage.driver === 's3') {
      for (const key of ['endpoint', 'accessKey', 'secretKey'] as const) {
        if (!c.storage[key]) ctx.addIssue({ code: 'custom', path: ['storage', key], message: 'required by the s3 storage driver' });
      }
    }
    if (c.database.driver === 'postgres' && !c.database.url) {
      ctx.addIssue({ code: 'custom', path: ['database', 'url'], message: 'required by the postgres database driver' });
    }
    if ((c.admin.user === undefined) !== (c.admin.password === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['admin', c.admin.user === undefined ? 'user' : 'password'], message: 'admin.user and admin.password go together' });
    }
    if (c.mode === 'distributed') {
      if (c.database.driver !== 'postgres') ctx.addIssue({ code: 'custom', path: ['database', 'driver'], message: 'distributed mode needs postgres' });
      if (c.storage.driver !== 's3') ctx.addIssue({ code: 'custom', path: ['storage', 'driver'], message: 'distributed mode needs s3' });
      if (c.kafka.brokers.length === 0) ctx.addIssue({ code: 'custom', path: ['kafka', 'brokers'], message: 'distributed mode needs Kafka brokers' });
    }
  });

/** The validated configuration of a Lading process. */
export type LadingConfig = z.output<typeof configSchema>;
/** One pull-through cache of the configuration (`proxies[]`). */
export type ProxyConfig = LadingConfig['proxies'][number];
/** The browser sign-in settings (`auth.oidc`). */
export type OidcConfig = NonNullable<LadingConfig['auth']['oidc']>;
/** One workload identity trust rule (`auth.workloadIdentity[]`). */
export type WorkloadIdentityRule = LadingConfig['auth']['workloadIdentity'][number];
/** Configuration as written in a file or a test: every key optional. */
export type LadingConfigInput = z.input<typeof configObject>;
