/**
 * lading-admin: manage a Lading registry's users, robot accounts, personal access tokens, namespaces, grants,
 * signing keys, webhook subscriptions, pull-through caches (proxies), storage quotas and usage reports through its admin API
 * (/admin/v1); read the audit trail (`audit`); back up a running embedded registry and
 * restore a backup into a data directory (backup-commands.ts). Run it as `tools/admin/lading-admin` or
 * `node --import tsx tools/admin/lading-admin.ts`; `--help` works on every command and subcommand.
 *
 * A namespace admin (a grant of `admin` on a namespace) uses it with its own credentials for what it may do there:
 * grants, robots of the namespace (`robots create <name> --namespace <prefix>`), webhooks, tag rules, audit.
 *
 * Exit status: 0 done, 1 the registry refused or failed the request (or could not be reached), 2 bad usage.
 */
import { parseArgs } from 'node:util';
import { formatBytes, parseByteSize } from './byte-size';
import { BackupCommandError, checkBackupFile, describeSummary, restoreBackupFile, writeBackupFile } from './backup-commands';
import { DeviceLoginError, deviceLogin } from './device-login';

const PROG = 'lading-admin';

type OptionSpec = { type: 'string' | 'boolean'; short?: string; help: string; value?: string };

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  url: { type: 'string', value: 'URL', help: 'the registry (default: $LADING_URL, else http://127.0.0.1:5000)' },
  user: { type: 'string', short: 'u', value: 'NAME', help: "an admin's or a namespace admin's name (default: $LADING_ADMIN_USER)" },
  password: { type: 'string', short: 'p', value: 'SECRET', help: "that admin's password or personal access token (default: $LADING_ADMIN_PASSWORD)" },
  'password-stdin': { type: 'boolean', help: "read the admin's password from standard input" },
  json: { type: 'boolean', help: 'print the API response as JSON' },
  help: { type: 'boolean', short: 'h', help: 'show help' },
  version: { type: 'boolean', help: 'print the version of this lading-admin and exit' },
};

const USER_PASSWORD_OPTIONS: Record<string, OptionSpec> = {
  'user-password': { type: 'string', value: 'SECRET', help: "the user's password, at least 8 characters (default: $LADING_USER_PASSWORD)" },
  'user-password-stdin': { type: 'boolean', help: "read the user's password from standard input" },
};

/** What a subcommand gets. */
interface Context {
  args: string[];
  options: Record<string, string | boolean | undefined>;
  api: Api;
  out: (line: string) => void;
  userPassword: () => Promise<string>;
  /** The environment the CLI was given (the registry's configuration, for commands that open a data directory). */
  env: Record<string, string | undefined>;
  /** The registry's base URL (`--url`). */
  base: string;
}

interface Subcommand {
  usage: string;
  summary: string;
  options?: Record<string, OptionSpec>;
  /** Names of the positional arguments, in order (all required). */
  args: string[];
  run(ctx: Context): Promise<void>;
}

/** A command: a group of subcommands, or (`action`) one that is itself what runs (`lading-admin backup`). */
type Command = { summary: string; subcommands: Record<string, Subcommand> } | { summary: string; action: Subcommand };

/** A usage error: exit status 2. */
class UsageError extends Error {}
/** A refused or failed request: exit status 1. */
class ApiError extends Error {}

/** The admin API over fetch, with Basic credentials. */
class Api {
  constructor(
    private readonly base: string,
    private readonly credentials: () => Promise<{ user: string; password: string }>,
  ) {}

  /**
   * A GET whose body the caller streams (a backup): the answer once its headers arrive (within `headersMs`), with no
   * deadline on the body; a refusal throws ApiError like `call`.
   */
  async open(path: string, headersMs: number): Promise<Response> {
    const { user, password } = await this.credentials();
    const url = `${this.base.replace(/\/+$/, '')}/admin/v1${path}`;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`no answer within ${Math.round(headersMs / 1000)} s`)), headersMs);
    let res: Response;
    try {
      res = await fetch(url, { headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` }, signal: abort.signal });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(`cannot reach ${this.base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    if (!res.ok) throw new ApiError(await refusal(res));
    return res;
  }

  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const { user, password } = await this.credentials();
    const url = `${this.base.replace(/\/+$/, '')}/admin/v1${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(`cannot reach ${this.base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!res.ok) throw new ApiError(describeRefusal(res, parsed));
    return parsed;
  }
}

/** The one-line description of a refused request: the OCI error's message and code, the status, any Retry-After. */
function describeRefusal(res: Response, parsed: unknown): string {
  const error = (parsed as { errors?: Array<{ code?: string; message?: string }> } | undefined)?.errors?.[0];
  const retry = res.headers.get('retry-after');
  const message = error?.message ?? (typeof parsed === 'string' && parsed ? parsed.slice(0, 200) : res.statusText);
  return `${message} (${res.status}${error?.code ? ` ${error.code}` : ''})${retry ? `; retry after ${retry} s` : ''}`;
}

/** Reads a refused answer's body and describes it. */
async function refusal(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: the text itself
  }
  return describeRefusal(res, parsed);
}

const enc = encodeURIComponent;

/** Prints rows as an aligned table (or a line saying there are none). */
function table(out: (line: string) => void, headers: string[], rows: string[][], none: string): void {
  if (rows.length === 0) {
    out(none);
    return;
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  out(line(headers));
  for (const row of rows) out(line(row));
}

const when = (value: unknown) => (value ? String(value) : '-');

/** `user:alice`, `robot:ci`, `robot$ci` or `group:platform`, as the admin API names grant holders. */
function principalArg(value: string): string {
  if (value.startsWith('robot$')) return `robot:${value.slice('robot$'.length)}`;
  if (value.startsWith('robot:robot$')) return `robot:${value.slice('robot:robot$'.length)}`;
  if (!/^(user|robot|group):./.test(value)) throw new UsageError(`principal must be user:<name> or robot:<name> or group:<name>, not ${JSON.stringify(value)}`);
  return value;
}

const ROLES = ['pull', 'push', 'delete', 'admin'];

const EXPIRES: Record<string, OptionSpec> = { 'expires-in': { type: 'string', value: 'DURATION', help: 'expire after this long, e.g. 30m, 12h, 720h (default: never)' } };

const WEBHOOK_FILTER_OPTIONS: Record<string, OptionSpec> = {
  namespace: { type: 'string', value: 'PREFIX', help: "only events of repositories <PREFIX> and <PREFIX>/... (default: '' = every repository)" },
  format: { type: 'string', value: 'FORMAT', help: 'cloudevents (default) or distribution (the CNCF Distribution notification envelope)' },
  events: { type: 'string', value: 'TYPES', help: "comma-separated event types, e.g. manifest.pushed,tag.updated ('all' or unset: every type)" },
  disabled: { type: 'boolean', help: 'hold deliveries (they stay pending until the webhook is enabled)' },
};

const COMMANDS: Record<string, Command> = {
  login: {
    summary: 'sign in through the identity provider (device grant) and print a personal access token',
    action: {
      usage: 'login [--url URL]',
      summary:
        'Signs in through the registry\'s OpenID Provider with the device authorization grant (open the link it prints, on any device) and prints `export LADING_ADMIN_USER=... LADING_ADMIN_PASSWORD=<personal access token>` lines: eval "$(lading-admin login)". The token also serves docker login.',
      args: [],
      async run(ctx) {
        try {
          const result = await deviceLogin({ registry: ctx.base, tell: (line) => process.stderr.write(`${line}\n`) });
          process.stderr.write(`Signed in as ${result.username}; personal access token ${result.tokenName} lasts ${Math.round(result.expiresInSeconds / 86400)} days.\n`);
          ctx.out(`export LADING_ADMIN_USER='${result.username}'`);
          ctx.out(`export LADING_ADMIN_PASSWORD='${result.token}'`);
        } catch (err) {
          if (err instanceof DeviceLoginError) throw new ApiError(err.message);
          throw err;
        }
      },
    },
  },
  users: {
    summary: 'manage users',
    subcommands: {
      list: {
        usage: 'users list',
        summary: 'list users',
        args: [],
        async run({ api, out, options }) {
          const body = (await api.call('GET', '/users')) as { users: Array<{ name: string; isAdmin: boolean; disabled: boolean; createdAt: string }> };
          if (options.json) return out(JSON.stringify(body, null, 2));
          table(out, ['NAME', 'ADMIN', 'DISABLED', 'CREATED'], body.users.map((u) => [u.name, u.isAdmin ? 'yes' : 'no', u.disabled ? 'yes' : 'no', u.createdAt]), 'no users');
        },
      },
      create: {
        usage: 'users create <name> [--admin] (--user-password SECRET | --user-password-stdin)',
        summary: 'create a user',
        options: { admin: { type: 'boolean', help: 'make the user an admin' }, ...USER_PASSWORD_OPTIONS },
        args: ['name'],
        async run({ api, out, args, options, userPassword }) {
          const body = await api.call('POST', '/users', { name: args[0], password: await userPassword(), admin: options.admin === true });
          out(options.json ? JSON.stringify(body, null, 2) : `created ${options.admin ? 'admin' : 'user'} ${args[0]}`);
        },
      },
      passwd: {
        usage: 'users passwd <name> (--user-password SECRET | --user-password-stdin)',
        summary: "set a user's password",
        options: USER_PASSWORD_OPTIONS,
        args: ['name'],
        async run({ api, out, args, userPassword }) {
          await api.call('PUT', `/users/${enc(args[0])}/password`, { password: await userPassword() });
          out(`changed the password of ${args[0]}`);
        },
      },
      disable: {
        usage: 'users disable <name>',
        summary: 'disable a user (no new tokens by password, personal access token or refresh token)',
        args: ['name'],
        async run({ api, out, args }) {
          await api.call('POST', `/users/${enc(args[0])}/disable`);
          out(`disabled ${args[0]}`);
        },
      },
      enable: {
        usage: 'users enable <name>',
        summary: 'enable a disabled user',
        args: ['name'],
        async run({ api, out, args }) {
          await api.call('POST', `/users/${enc(args[0])}/enable`);
          out(`enabled ${args[0]}`);
        },
      },
      delete: {
        usage: 'users delete <name>',
        summary: 'delete a user, with its tokens and grants',
        args: ['name'],
        async run({ api, out, args }) {
          await api.call('DELETE', `/users/${enc(args[0])}`);
          out(`deleted ${args[0]}`);
        },
      },
    },
  },
  robots: {
    summary: 'manage robot accounts (for CI)',
    subcommands: {
      list: {
        usage: 'robots list',
        summary: 'list robot accounts',
        args: [],
        async run({ api, out, options }) {
          const body = (await api.call('GET', '/robots')) as {
            robots: Array<{ name: string; namespace?: string | null; login: string; expiresAt: string | null; revokedAt: string | null; createdBy: string | null }>;
          };
          if (options.json) return out(JSON.stringify(body, null, 2));
          table(
            out,
            ['NAME', 'NAMESPACE', 'LOGIN', 'EXPIRES', 'REVOKED', 'CREATED BY'],
            body.robots.map((r) => [r.name, r.namespace ?? '(global)', r.login, when(r.expiresAt), when(r.revokedAt), when(r.createdBy)]),
            'no robots',
          );
        },
      },
      create: {
        usage: 'robots create <name> [--namespace PREFIX] [--expires-in DURATION]',
        summary: 'create a robot account and print its secret (shown only once); with --namespace it belongs to that namespace',
        options: {
          namespace: { type: 'string', value: 'PREFIX', help: 'the namespace that owns the robot: named <PREFIX>+<name>, granted there only (a namespace admin must give it)' },
          ...EXPIRES,
        },
        args: ['name'],
        async run({ api, out, args, options }) {
          const body = (await api.call('POST', '/robots', { name: args[0], namespace: options.namespace, expiresIn: options['expires-in'] })) as { name: string; login: string; secret: string };
          if (options.json) return out(JSON.stringify(body, null, 2));
          out(`created robot ${body.name}`);
          out(`login:  ${body.login}`);
          out(`secret: ${body.secret}`);
          out('(the secret is shown only this once; give the robot grants with `grants add`)');
        },
      },
      revoke: {
        usage: 'robots revoke <name>',
        summary: 'revoke a robot account (its tokens stop working when they expire)',
        args: ['name'],
        async run({ api, out, args }) {
          await api.call('DELETE', `/robots/${enc(args[0].replace(/^robot\$/, ''))}`);
          out(`revoked robot ${args[0]}`);
        },
      },
    },
  },
  tokens: {
    summary: "manage users' personal access tokens",
    subcommands: {
      list: {
        usage: 'tokens list <user>',
        summary: "list a user's personal access tokens",
        args: ['user'],
        async run({ api, out, args, options }) {
          const body = (await api.call('GET', `/users/${enc(args[0])}/tokens`)) as { tokens: Array<{ name: string; expiresAt: string | null; revokedAt: string | null }> };
          if (options.json) return out(JSON.stringify(body, null, 2));
          table(out, ['NAME', 'EXPIRES', 'REVOKED'], body.tokens.map((t) => [t.name, when(t.expiresAt), when(t.revokedAt)]), `no tokens for ${args[0]}`);
        },
      },
      create: {
        usage: 'tokens create <user> <name> [--expires-in DURATION]',
        summary: 'create a personal access token and print it (shown only once); it is used as the password',
        options: EXPIRES,
        args: ['user', 'name'],
        async run({ api, out, args, options }) {
          const body = (await api.call('POST', `/users/${enc(args[0])}/tokens`, { name: args[1], expiresIn: options['expires-in'] })) as { token: string };
          if (options.json) return out(JSON.stringify(body, null, 2));
          out(`created token ${args[1]} for ${args[0]}`);
          out(`token: ${body.token}`);
          out('(the token is shown only this once)');
        },
      },
      revoke: {
        usage: 'tokens revoke <user> <name>',
        summary: 'revoke a personal access token',
        args: ['user', 'name'],
        async run({ api, out, args }) {
          await api.call('DELETE', `/users/${enc(args[0])}/tokens/${enc(args[1])}`);
          out(`revoked token ${args[1]} of ${args[0]}`);
        },
      },
    },
  },
  namespaces: {
    summary: 'manage namespaces (repository-name prefixes that grants apply to)',
    subcommands: {
      list: {
        usage: 'namespaces list',
        summary: 'list namespaces with their grants',
        args: [],
        async run({ api, out, options }) {
          const body = (await api.call('GET', '/namespaces')) as NamespacesBody;
          if (options.json) return out(JSON.stringify(body, null, 2));
          table(
            out,
            ['PREFIX', 'PUBLIC', 'IMMUTABLE-TAGS', 'EXCEPT', 'GRANTS'],
            body.namespaces.map((n) => [
              n.prefix,
              n.public ? 'yes' : 'no',
              n.immutableTags.join(',') || '-',
              n.immutableTagExceptions.join(',') || '-',
              n.grants.map((g) => `${holder(g)}=${g.role}`).join(', ') || '-',
            ]),
            'no namespaces',
          );
        },
      },
      create: {
        usage: 'namespaces create <prefix> [--public]',
        summary: 'create a namespace (or change whether it is public); it covers <prefix> and <prefix>/...',
        options: { public: { type: 'boolean', help: 'anyone, even anonymous, may pull from it' } },
        args: ['prefix'],
        async run({ api, out, args, options }) {
          await api.call('POST', '/namespaces', { prefix: args[0], public: options.public === true });
          out(`namespace ${args[0]} is ${options.public ? 'public' : 'private'}`);
        },
      },
      update: {
        usage: "namespaces update <prefix> [--public|--private] [--immutable-tags 'v*,release-*'] [--except latest]",
        summary:
          'change a namespace: whether it is public, and which tags are immutable (globs: * any run, ? one character) ' +
          "with the exceptions to them; a tag that exists and is immutable never moves to another digest and is never deleted; '' clears a list",
        options: {
          public: { type: 'boolean', help: 'anyone, even anonymous, may pull from it' },
          private: { type: 'boolean', help: 'only principals with a grant may pull' },
          'immutable-tags': { type: 'string', value: 'GLOBS', help: "comma-separated tag globs that may not move or be deleted once pushed ('' = none)" },
          except: { type: 'string', value: 'GLOBS', help: "comma-separated tag globs exempt from --immutable-tags ('' = none)" },
        },
        args: ['prefix'],
        async run({ api, out, args, options }) {
          if (options.public && options.private) throw new UsageError('namespaces update takes --public or --private, not both');
          const changes: Record<string, unknown> = {};
          if (options.public) changes.public = true;
          if (options.private) changes.public = false;
          const immutable = globList(options['immutable-tags'], '--immutable-tags');
          const except = globList(options.except, '--except');
          if (immutable) changes.immutableTags = immutable;
          if (except) changes.immutableTagExceptions = except;
          if (Object.keys(changes).length === 0) throw new UsageError('namespaces update needs --public, --private, --immutable-tags or --except');
          const body = (await api.call('PATCH', `/namespaces?prefix=${enc(args[0])}`, changes)) as Namespace;
          if (options.json) return out(JSON.stringify(body, null, 2));
          out(`namespace ${body.prefix} is ${body.public ? 'public' : 'private'}; ${describeTagRules(body)}`);
        },
      },
      delete: {
        usage: 'namespaces delete <prefix>',
        summary: 'delete a namespace and its grants (not its repositories)',
        args: ['prefix'],
        async run({ api, out, args }) {
          await api.call('DELETE', `/namespaces?prefix=${enc(args[0])}`);
          out(`deleted namespace ${args[0]}`);
        },
      },
    },
  },
  repositories: {
    summary: 'delete repositories',
    subcommands: {
      delete: {
        usage: 'repositories delete <name> [--force]',
        summary:
          'delete a repository: its tags, manifests, blob links and upload sessions (gone from every read at once; a large ' +
          'one in batches the collector finishes; the collector then reclaims the blobs nothing else references); one ' +
          'holding immutable tags needs --force',
        options: { force: { type: 'boolean', help: 'delete it even though it holds immutable tags' } },
        args: ['name'],
        async run({ api, out, args, options }) {
          const path = `/repositories/${args[0].split('/').map(enc).join('/')}${options.force ? '?force=true' : ''}`;
          const body = (await api.call('DELETE', path)) as { repository: string; tags: number; manifests: number; blobsQueued: number; uploads: number; pending?: boolean };
          if (options.json) return out(JSON.stringify(body, null, 2));
          if (body.pending) {
            out(`deleting repository ${body.repository}: ${body.tags} tags, ${body.manifests} manifests, ${body.uploads} upload sessions; gone from every read now, the collector deletes the rest in batches (${body.blobsQueued} blobs queued so far)`);
            return;
          }
          out(`deleted repository ${body.repository}: ${body.tags} tags, ${body.manifests} manifests, ${body.uploads} upload sessions; ${body.blobsQueued} blobs queued for collection`);
        },
      },
    },
  },
  grants: {
    summary: 'grant roles on namespaces to users, robots and directory groups',
    subcommands: {
      list: {
        usage: 'grants list [--prefix PREFIX]',
        summary: 'list grants',
        options: { prefix: { type: 'string', value: 'PREFIX', help: 'only the grants on this namespace' } },
        args: [],
        async run({ api, out, options }) {
          const body = (await api.call('GET', '/namespaces')) as NamespacesBody;
          const rows = body.namespaces
            .filter((n) => options.prefix === undefined || n.prefix === options.prefix)
            .flatMap((n) => n.grants.map((g) => ({ prefix: n.prefix, principal: holder(g), role: g.role })));
          if (options.json) return out(JSON.stringify({ grants: rows }, null, 2));
          table(out, ['PREFIX', 'PRINCIPAL', 'ROLE'], rows.map((g) => [g.prefix, g.principal, g.role]), 'no grants');
        },
      },
      add: {
        usage: `grants add <prefix> <user:NAME|robot:NAME|group:NAME> <${ROLES.join('|')}>`,
        summary: 'grant a role on a namespace (push implies pull; admin is everything)',
        args: ['prefix', 'principal', 'role'],
        async run({ api, out, args }) {
          await api.call('POST', '/grants', grantBody(args));
          out(`granted ${args[2]} on ${args[0]} to ${args[1]}`);
        },
      },
      remove: {
        usage: `grants remove <prefix> <user:NAME|robot:NAME|group:NAME> <${ROLES.join('|')}>`,
        summary: 'remove a grant',
        args: ['prefix', 'principal', 'role'],
        async run({ api, out, args }) {
          await api.call('DELETE', '/grants', grantBody(args));
          out(`removed ${args[2]} on ${args[0]} from ${args[1]}`);
        },
      },
    },
  },
  webhook: {
    summary: 'manage webhook subscriptions and their deliveries',
    subcommands: {
      create: {
        usage: 'webhook create <name> <url> [--namespace PREFIX] [--format cloudevents|distribution] [--events TYPES] [--disabled]',
        summary: 'subscribe a URL to registry events and print its signing secret (shown only once)',
        options: WEBHOOK_FILTER_OPTIONS,
        args: ['name', 'url'],
        async run({ api, out, args, options }) {
          const body = (await api.call('POST', '/webhooks', {
            name: args[0],
            url: args[1],
            namespace: options.namespace,
            format: options.format,
            eventTypes: eventsOption(options.events),
            enabled: options.disabled !== true,
          })) as Webhook & { secret: string };
          if (options.json) return out(JSON.stringify(body, null, 2));
          out(`created webhook ${body.id} (${body.name})`);
          out(`secret: ${body.secret}`);
          out('(the secret is shown only this once; receivers verify the webhook-signature header with it)');
        },
      },
      list: {
        usage: 'webhook list',
        summary: 'list webhook subscriptions',
        args: [],
        async run({ api, out, options }) {
          const body = (await api.call('GET', '/webhooks')) as { webhooks: Webhook[] };
          if (options.json) return out(JSON.stringify(body, null, 2));
          table(
            out,
            ['ID', 'NAME', 'NAMESPACE', 'FORMAT', 'ENABLED', 'EVENTS', 'URL'],
            body.webhooks.map((w) => [w.id, w.name, w.namespace || '*', w.format, w.enabled ? 'yes' : 'no', w.eventTypes.map(shortType).join(',') || 'all', w.url]),
            'no webhooks',
          );
        },
      },
      show: {
        usage: 'webhook show <id>',
        summary: 'show a webhook subscription (never its secret)',
        args: ['id'],
        async run({ api, out, args }) {
          out(JSON.stringify(await api.call('GET', `/webhooks/${enc(args[0])}`), null, 2));
        },
      },
      update: {
        usage: 'webhook update <id> [--endpoint URL] [--rename NAME] [--namespace PREFIX] [--format F] [--events TYPES] [--enable|--disabled]',
        summary: 'change a webhook subscription',
        options: {
          endpoint: { type: 'string', value: 'URL', help: 'deliver to this URL from now on' },
          rename: { type: 'string', value: 'NAME', help: 'a new name' },
          ...WEBHOOK_FILTER_OPTIONS,
          enable: { type: 'boolean', help: 'resume deliveries (pending ones go out)' },
        },
        args: ['id'],
        async run({ api, out, args, options }) {
          if (options.enable && options.disabled) throw new UsageError('--enable and --disable exclude each other');
          const changes: Record<string, unknown> = {};
          if (options.endpoint !== undefined) changes.url = options.endpoint;
          if (options.rename !== undefined) changes.name = options.rename;
          if (options.namespace !== undefined) changes.namespace = options.namespace;
          if (options.format !== undefined) changes.format = options.format;
          if (options.events !== undefined) changes.eventTypes = eventsOption(options.events);
          if (options.enable) changes.enabled = true;
          if (options.disabled) changes.enabled = false;
          if (Object.keys(changes).length === 0) throw new UsageError('nothing to change; see lading-admin webhook update --help');
          const body = (await api.call('PATCH', `/webhooks/${enc(args[0])}`, changes)) as Webhook;
          out(options.json ? JSON.stringify(body, null, 2) : `updated webhook ${body.id}`);
        },
      },
      delete: {
        usage: 'webhook delete <id>',
        summary: 'delete a webhook subscription and its deliveries',
        args: ['id'],
        async run({ api, out, args }) {
          await api.call('DELETE', `/webhooks/${enc(args[0])}`);
          out(`deleted webhook ${args[0]}`);
        },
      },
      rotate: {
        usage: 'webhook rotate <id>',
        summary: 'replace the signing secret and print the new one (shown only once)',
        args: ['id'],
        async run({ api, out, args, options }) {
          const body = (await api.call('POST', `/webhooks/${enc(args[0])}/rotate`)) as { id: string; secret: string };
          if (options.json) return out(JSON.stringify(body, null, 2));
          out(`rotated the secret of webhook ${body.id}`);
          out(`secret: ${body.secret}`);
        },
      },
      deliveries: {
        usage: 'webhook deliveries <id> [--status pending|delivered|dead] [--limit N] [--after DELIVERY_ID]',
        summary: "list a webhook's deliveries, oldest first",
        options: {
          status: { type: 'string', value: 'STATUS', help: 'only deliveries in this state: pending, delivered or dead' },
          limit: { type: 'string', value: 'N', help: 'at most N deliveries (default 100)' },
          after: { type: 'string', value: 'DELIVERY_ID', help: 'start after this delivery (the last one of the previous page)' },
        },
        args: ['id'],
        async run({ api, out, args, options }) {
          const query = new URLSearchParams({ n: String(options.limit ?? '100') });
          if (options.status !== undefined) query.set('status', String(options.status));
          if (options.after !== undefined) query.set('last', String(options.after));
          const body = (await api.call('GET', `/webhooks/${enc(args[0])}/deliveries?${query}`)) as { deliveries: Delivery[] };
          if (options.json) return out(JSON.stringify(body, null, 2));
          table(
            out,
            ['DELIVERY', 'EVENT', 'TYPE', 'REPOSITORY', 'STATUS', 'ATTEMPTS', 'LAST', 'NEXT'],
            body.deliveries.map((d) => [d.id, d.eventId, shortType(d.eventType), d.repository || '-', d.status, String(d.attempts), d.lastError ?? when(d.lastStatus), when(d.nextAttemptAt)]),
            'no deliveries',
          );
        },
      },
      redeliver: {
        usage: 'webhook redeliver <id> <delivery-id>',
        summary: 'queue a delivered or dead delivery again (the same event id)',
        args: ['id', 'delivery-id'],
        async run({ api, out, args, options }) {
          const body = (await api.call('POST', `/webhooks/${enc(args[0])}/deliveries/${enc(args[1])}/redeliver`)) as Delivery;
          out(options.json ? JSON.stringify(body, null, 2) : `queued delivery ${body.id} (event ${body.eventId}) again`);
        },
      },
      ping: {
        usage: 'webhook ping <id>',
        summary: 'queue a test event (io.lading.webhook.ping) to the webhook',
        args: ['id'],
        async run({ api, out, args, options }) {
          const body = (await api.call('POST', `/webhooks/${enc(args[0])}/ping`)) as { deliveryId: string; eventId: string };
          out(options.json ? JSON.stringify(body, null, 2) : `queued ping ${body.eventId} as delivery ${body.deliveryId}`);
        },
      },
    },
  },
  keys: {
    summary: "manage the token service's signing keys",
    subcommands: {
      rotate: {
        usage: 'keys rotate',
        summary: 'start signing with a new key; the old ones stay published until the tokens they signed expire',
        args: [],
        async run({ api, out, options }) {
          const body = (await api.call('POST', '/keys/rotate')) as { kid: string };
          out(options.json ? JSON.stringify(body, null, 2) : `signing with new key ${body.kid}`);
        },
      },
    },
  },
  proxies: {
    summary: 'manage pull-through caches (proxy namespaces); those of the configuration file are listed, read-only',
    subcommands: {
      list: {
        usage: 'proxies list',
        summary: 'list the proxy namespaces, from the configuration file and stored ones (never a password)',
        args: [],
        async run({ api, out, options }) {
          const body = (await api.call('GET', '/proxies')) as { proxies: Proxy[] };
          if (options.json) return out(JSON.stringify(body, null, 2));
          table(
            out,
            ['NAMESPACE', 'UPSTREAM', 'USERNAME', 'PASSWORD', 'TAG-TTL', 'EVICT-AFTER', 'SOURCE'],
            body.proxies.map((p) => [p.namespace, p.upstream, p.username ?? '-', p.passwordSet ? 'set' : '-', p.tagTtl, p.evictAfter ?? '-', p.source]),
            'no proxy namespaces',
          );
        },
      },
      set: {
        usage: 'proxies set <namespace> --upstream URL [--upstream-username NAME --upstream-password-stdin] [--tag-ttl 10m] [--evict-after 30d]',
        summary:
          'create or replace a stored proxy namespace: <namespace>/<path> is pulled from <URL>/v2/<path> on a miss, at once in every ' +
          'process (a replacement is the whole rule: send the password again)',
        options: {
          upstream: { type: 'string', value: 'URL', help: 'the upstream registry, an http:// or https:// base URL without a path (e.g. https://registry-1.docker.io)' },
          'upstream-username': { type: 'string', value: 'NAME', help: "the upstream account's name (with a password; default: anonymous)" },
          'upstream-password-stdin': { type: 'boolean', help: "read the upstream account's password from standard input (default: $LADING_UPSTREAM_PASSWORD)" },
          'tag-ttl': { type: 'string', value: 'DURATION', help: 'how long a cached tag is trusted before it is checked upstream again (default: 10m)' },
          'evict-after': { type: 'string', value: 'DURATION', help: 'evict content not pulled for this long, e.g. 30d (default: never)' },
        },
        args: ['namespace'],
        async run({ api, out, args, options, env }) {
          if (typeof options.upstream !== 'string') throw new UsageError('proxies set needs --upstream URL');
          const username = options['upstream-username'] as string | undefined;
          let password: string | undefined;
          if (username === undefined) {
            if (options['upstream-password-stdin']) throw new UsageError('--upstream-password-stdin needs --upstream-username');
          } else {
            password = options['upstream-password-stdin'] ? await readStdinLine() : env.LADING_UPSTREAM_PASSWORD;
            if (!password) throw new UsageError('--upstream-username needs the upstream password: --upstream-password-stdin or LADING_UPSTREAM_PASSWORD');
          }
          const body = await api.call('PUT', `/proxies/${args[0].split('/').map(enc).join('/')}`, {
            upstream: options.upstream,
            ...(username === undefined ? {} : { username, password }),
            tagTtl: options['tag-ttl'],
            evictAfter: options['evict-after'],
          });
          if (options.json) return out(JSON.stringify(body, null, 2));
          const rule = body as Proxy;
          out(`set proxy ${rule.namespace} of ${rule.upstream} (${rule.passwordSet ? `as ${rule.username}` : 'anonymous'}, tag TTL ${rule.tagTtl}${rule.evictAfter ? `, evict after ${rule.evictAfter}` : ''})`);
        },
      },
      remove: {
        usage: 'proxies remove <namespace>',
        summary: 'remove a stored proxy namespace: what it cached stays as ordinary content, and the namespace takes pushes again',
        args: ['namespace'],
        async run({ api, out, args }) {
          await api.call('DELETE', `/proxies/${args[0].split('/').map(enc).join('/')}`);
          out(`removed proxy ${args[0]}; its cached content stays as ordinary content`);
        },
      },
    },
  },
  quotas: {
    summary: 'set and list per-namespace storage quotas (bytes of the distinct blobs its manifests reference)',
    subcommands: {
      list: {
        usage: 'quotas list',
        summary: 'list the namespaces with a quota, with the usage as last counted',
        args: [],
        async run({ api, out, options }) {
          const body = (await api.call('GET', '/quotas')) as { quotas: { namespace: string; quotaBytes: number; countedBytes: number | null }[] };
          if (options.json) return out(JSON.stringify(body, null, 2));
          table(out, ['NAMESPACE', 'QUOTA', 'USED'], body.quotas.map((q) => [q.namespace, formatBytes(q.quotaBytes), q.countedBytes === null ? '-' : formatBytes(q.countedBytes)]), 'no quotas');
        },
      },
      set: {
        usage: 'quotas set <namespace> <size>',
        summary: 'set a namespace\'s quota (e.g. 500MB, 10GiB, or bytes); pushes that would exceed it are refused with 403 DENIED',
        args: ['namespace', 'size'],
        async run({ api, out, args, options }) {
          let quotaBytes: number;
          try {
            quotaBytes = parseByteSize(args[1]);
          } catch (err) {
            throw new UsageError((err as Error).message);
          }
          const body = (await api.call('PUT', `/quotas/${args[0].split('/').map(enc).join('/')}`, { quotaBytes })) as { namespace: string; quotaBytes: number; usedBytes: number };
          out(options.json ? JSON.stringify(body, null, 2) : `quota of ${body.namespace}: ${formatBytes(body.quotaBytes)} (${formatBytes(body.usedBytes)} used)`);
        },
      },
      remove: {
        usage: 'quotas remove <namespace>',
        summary: 'remove a namespace\'s quota',
        args: ['namespace'],
        async run({ api, out, args }) {
          await api.call('DELETE', `/quotas/${args[0].split('/').map(enc).join('/')}`);
          out(`removed the quota of ${args[0]}`);
        },
      },
    },
  },
  usage: {
    summary: 'report storage usage per namespace, or per repository of one namespace',
    action: {
      usage: 'usage [--namespace NS]',
      summary: 'what each namespace holds (bytes of distinct referenced blobs, blobs, manifests, tags), or with --namespace each of its repositories',
      options: { namespace: { type: 'string', value: 'NS', help: 'report the repositories of this namespace' } },
      args: [],
      async run({ api, out, options }) {
        type Usage = { prefix: string; quotaBytes: number | null; bytes: number; blobs: number; manifests: number; tags: number; repositories: number };
        if (typeof options.namespace === 'string') {
          const path = `/usage/${options.namespace.split('/').map(enc).join('/')}`;
          const rows: { name: string; bytes: number; blobs: number; manifests: number; tags: number }[] = [];
          let head: Usage | undefined;
          let last: string | undefined;
          do {
            const page = (await api.call('GET', `${path}?n=1000${last ? `&last=${enc(last)}` : ''}`)) as Usage & { repositories: typeof rows; next?: string };
            head ??= page;
            rows.push(...page.repositories);
            last = page.next;
          } while (last);
          if (options.json) return out(JSON.stringify({ ...head, repositories: rows }, null, 2));
          out(`${head!.prefix}: ${formatBytes(head!.bytes)}${head!.quotaBytes === null ? '' : ` of ${formatBytes(head!.quotaBytes)}`} in ${head!.blobs} blobs`);
          return table(out, ['REPOSITORY', 'BYTES', 'BLOBS', 'MANIFESTS', 'TAGS'], rows.map((r) => [r.name, formatBytes(r.bytes), String(r.blobs), String(r.manifests), String(r.tags)]), 'no repositories');
        }
        const body = (await api.call('GET', '/usage')) as { namespaces: Usage[] };
        if (options.json) return out(JSON.stringify(body, null, 2));
        table(
          out,
          ['NAMESPACE', 'BYTES', 'QUOTA', 'BLOBS', 'MANIFESTS', 'TAGS', 'REPOSITORIES'],
          body.namespaces.map((n) => [n.prefix, formatBytes(n.bytes), n.quotaBytes === null ? '-' : formatBytes(n.quotaBytes), String(n.blobs), String(n.manifests), String(n.tags), String(n.repositories)]),
          'no namespaces',
        );
      },
    },
  },
  audit: {
    summary: 'list the audit trail: logins, admin changes and pulls, oldest first (or newest first)',
    action: {
      usage: 'audit [--since 1h] [--until TIME] [--actor NAME] [--repository REPO] [--namespace PREFIX] [--type TYPE] [--order oldest|newest] [--limit N] [--after CURSOR]',
      summary:
        'list audit log entries, oldest first unless --order newest (GET /admin/v1/audit); times are RFC 3339 or a duration back from now (30m, 24h, 7d); ' +
        'a page that is not the last ends with the --after (and --order) of the next',
      options: {
        since: { type: 'string', value: 'TIME', help: 'entries at or after this time (default: all the log keeps, audit.retention)' },
        until: { type: 'string', value: 'TIME', help: 'entries before this time' },
        actor: { type: 'string', value: 'NAME', help: "one principal's entries: a user's name or robot$<name>" },
        repository: { type: 'string', value: 'REPO', help: "one repository's pulls" },
        namespace: { type: 'string', value: 'PREFIX', help: "the pulls of a namespace's repositories (what a namespace admin may read)" },
        type: { type: 'string', value: 'TYPE', help: 'one type: login, admin, pulls (or the full io.lading.audit.<type>)' },
        order: { type: 'string', value: 'ORDER', help: 'oldest (the default) or newest: which entries come first' },
        limit: { type: 'string', value: 'N', help: 'at most N entries (default 100, at most 1000)' },
        after: { type: 'string', value: 'CURSOR', help: 'the next page: the cursor the previous page ended with' },
      },
      args: [],
      async run({ api, out, options }) {
        const query = new URLSearchParams({ n: String(options.limit ?? '100') });
        for (const name of ['since', 'until', 'actor', 'repository', 'namespace', 'order'] as const) if (options[name] !== undefined) query.set(name, String(options[name]));
        if (options.type !== undefined) query.set('type', String(options.type).includes('.') ? String(options.type) : `io.lading.audit.${String(options.type)}`);
        if (options.after !== undefined) query.set('last', String(options.after));
        const body = (await api.call('GET', `/audit?${query}`)) as { entries: AuditEntry[]; next: string | null };
        if (options.json) return out(JSON.stringify(body, null, 2));
        table(
          out,
          ['TIME', 'TYPE', 'ACTOR', 'REPOSITORY', 'WHAT'],
          body.entries.map((e) => [e.time, shortType(e.type), e.actor ?? 'anonymous', e.repository ?? '-', auditSummary(e)]),
          'no audit entries',
        );
        // The next page continues in the same order: the cursor is a place, the order a direction.
        if (body.next) out(`more: ${options.order === 'newest' ? '--order newest ' : ''}--after ${body.next}`);
      },
    },
  },
  backup: {
    summary: 'write an online backup of a running embedded registry to a file',
    action: {
      usage: 'backup --out FILE',
      summary:
        'write a consistent backup of a running embedded registry (its database and every blob it names) to FILE, ' +
        'taken while it serves; FILE appears only once the whole archive has arrived and checked out',
      options: { out: { type: 'string', value: 'FILE', help: 'the archive to write (a tar file; must not exist yet)' } },
      args: [],
      async run({ api, out, options }) {
        if (typeof options.out !== 'string' || options.out === '') throw new UsageError('backup needs --out FILE');
        // The registry dumps its database before it answers: give it time on a large one.
        const res = await api.open('/backup', 10 * 60_000).catch((err: unknown) => {
          if (err instanceof ApiError && / \(404\b/.test(err.message)) {
            throw new ApiError(`${err.message}: only an embedded registry takes online backups; back up a distributed one with pg_dump (docs/operations/backup.md)`);
          }
          throw err;
        });
        const length = res.headers.get('content-length');
        const started = Date.now();
        // A web ReadableStream is an async iterable of its chunks in node.
        const body = (res.body ?? (async function* () {})()) as unknown as AsyncIterable<Uint8Array>;
        const summary = await writeBackupFile(body, length === null ? null : Number(length), options.out).catch(failed);
        if (options.json) return out(JSON.stringify(summary, null, 2));
        out(`wrote ${options.out} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${describeSummary(summary)}`);
      },
    },
  },
  restore: {
    summary: 'restore a backup into an empty data directory (with no registry running on it), or check one',
    action: {
      usage: 'restore --from FILE [--data-dir DIR] [--check]',
      summary:
        "restore a backup archive into the embedded registry's data directory (from the registry's configuration: " +
        'LADING_CONFIG, LADING_DATA_DIR, ...; or --data-dir), which must be empty and not in use; or, with --check, ' +
        'only check the archive whole',
      options: {
        from: { type: 'string', value: 'FILE', help: 'the backup archive (written by lading-admin backup)' },
        'data-dir': { type: 'string', value: 'DIR', help: 'the data directory to restore into (default: data.dir of the configuration)' },
        check: { type: 'boolean', help: 'read and check the whole archive; restore nothing' },
      },
      args: [],
      async run({ out, options, env }) {
        if (typeof options.from !== 'string' || options.from === '') throw new UsageError('restore needs --from FILE');
        if (options.check) {
          const summary = await checkBackupFile(options.from).catch(failed);
          if (options.json) return out(JSON.stringify(summary, null, 2));
          return out(`${options.from} is a complete backup: ${describeSummary(summary)}`);
        }
        const dataDir = typeof options['data-dir'] === 'string' ? options['data-dir'] : undefined;
        const result = await restoreBackupFile(options.from, env, dataDir, (line) => out(`restore: ${line}`)).catch(failed);
        if (options.json) return out(JSON.stringify(result, null, 2));
        const upgraded = result.upgradedWith.length ? `; upgraded the schema with ${result.upgradedWith.join(', ')}` : '';
        out(`restored ${options.from} into ${result.databasePath} and ${result.storageRoot}: ${describeSummary(result.summary)}${upgraded}`);
        out('start the registry on this data directory to serve it');
      },
    },
  },
};

type Proxy = { namespace: string; upstream: string; username?: string; passwordSet: boolean; tagTtl: string; evictAfter?: string; source: 'config' | 'stored' };
type Webhook = { id: string; name: string; namespace: string; url: string; format: string; eventTypes: string[]; enabled: boolean };
type Delivery = {
  id: string;
  eventId: string;
  eventType: string;
  repository: string;
  status: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
};

/** Turns a backup command's one-line failure into the CLI's (exit status 1). */
function failed(err: unknown): never {
  if (err instanceof BackupCommandError) throw new ApiError(err.message);
  throw err;
}

/** An entry of the audit log as the admin API lists it. */
interface AuditEntry {
  id: number;
  eventId: string;
  time: string;
  type: string;
  actor: string | null;
  repository: string | null;
  record: Record<string, unknown>;
}

/** The WHAT column of an audit entry: a login's result, an admin change's action and target, a pull count. */
function auditSummary(e: AuditEntry): string {
  const r = e.record;
  const addr = (r.request as { addr?: string } | null)?.addr;
  if (e.type.endsWith('.login')) return `${String(r.result)}${r.reason ? ` (${String(r.reason)})` : ''} by ${String(r.method)}${addr ? ` from ${addr}` : ''}`;
  if (e.type.endsWith('.admin')) return `${String(r.action).split(' ')[0]} ${String(r.target)} -> ${String(r.status)}`;
  if (e.type.endsWith('.pulls')) return `${String(r.count)} pulls from ${String(r.windowStart)}`;
  return '';
}

/** `io.lading.audit.login` → `audit.login`, for tables. */
function shortType(type: string): string {
  return type.replace(/^io\.lading\./, '');
}

/** `--events manifest.pushed,tag.updated` → the list (empty: every type); `--events all` clears the filter. */
function eventsOption(value: string | boolean | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new UsageError('--events takes a comma-separated list of event types');
  if (value === 'all' || value === '') return [];
  return value.split(',').map((t) => t.trim()).filter(Boolean);
}

type Namespace = { prefix: string; public: boolean; immutableTags: string[]; immutableTagExceptions: string[] };
type NamespacesBody = { namespaces: Array<Namespace & { grants: Array<{ principalType: string; principalName: string; role: string }> }> };

/** `--immutable-tags 'v*,release-*'` → the list ('' → none); undefined when the option is not given. */
function globList(value: string | boolean | undefined, option: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new UsageError(`${option} takes a comma-separated list of tag globs`);
  return value.split(',').map((g) => g.trim()).filter(Boolean);
}

/** A namespace's immutable-tag rules, in words. */
function describeTagRules(n: Namespace): string {
  if (n.immutableTags.length === 0) return 'no immutable tags';
  const except = n.immutableTagExceptions.length ? ` except ${n.immutableTagExceptions.join(',')}` : '';
  return `immutable tags ${n.immutableTags.join(',')}${except}`;
}

function holder(g: { principalType: string; principalName: string }): string {
  if (g.principalType === 'robot') return `robot:${g.principalName.replace(/^robot\$/, '')}`;
  return `${g.principalType === 'group' ? 'group' : 'user'}:${g.principalName}`;
}

function grantBody(args: string[]): { prefix: string; principal: string; role: string } {
  if (!ROLES.includes(args[2])) throw new UsageError(`role must be one of ${ROLES.join(', ')}, not ${JSON.stringify(args[2])}`);
  return { prefix: args[0], principal: principalArg(args[1]), role: args[2] };
}

function optionLines(options: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(options).map(([name, spec]) => [`${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.value ? ` ${spec.value}` : ''}`, spec.help]);
  const width = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`);
}

function mainHelp(): string {
  const lines = [
    `usage: ${PROG} [global options] <command> <subcommand> [arguments] [options]`,
    '',
    "Manages a Lading registry's users, robots, tokens, namespaces, grants, signing keys, webhooks and pull-through",
    'caches (proxies) through its admin API; backs up a running embedded registry and restores a backup into a data directory.',
    '',
    'commands:',
  ];
  for (const [name, command] of Object.entries(COMMANDS)) {
    lines.push(`  ${name.padEnd(11)} ${command.summary}${'subcommands' in command ? ` (${Object.keys(command.subcommands).join(', ')})` : ''}`);
  }
  lines.push('', 'global options:', ...optionLines(GLOBAL_OPTIONS), '', `Run \`${PROG} <command> --help\` or \`${PROG} <command> <subcommand> --help\` for more.`);
  lines.push('Exit status: 0 done, 1 the registry refused or failed the request, 2 bad usage.');
  return lines.join('\n');
}

function commandHelp(name: string, command: Extract<Command, { subcommands: unknown }>): string {
  return [
    `usage: ${PROG} ${name} <subcommand> [arguments] [options]`,
    '',
    `${command.summary[0].toUpperCase()}${command.summary.slice(1)}.`,
    '',
    'subcommands:',
    ...Object.values(command.subcommands).flatMap((s) => [`  ${PROG} ${s.usage}`, `      ${s.summary}`]),
    '',
    `Global options (--url, --user, --password, --json, ...): see \`${PROG} --help\`.`,
  ].join('\n');
}

function subcommandHelp(sub: Subcommand): string {
  return [
    `usage: ${PROG} ${sub.usage}`,
    '',
    `${sub.summary[0].toUpperCase()}${sub.summary.slice(1)}.`,
    ...(sub.options ? ['', 'options:', ...optionLines(sub.options)] : []),
    '',
    'global options:',
    ...optionLines(GLOBAL_OPTIONS),
  ].join('\n');
}

function toParseArgsOptions(specs: Record<string, OptionSpec>) {
  return Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, spec.short ? { type: spec.type, short: spec.short } : { type: spec.type }]));
}

const ALL_OPTIONS: Record<string, OptionSpec> = Object.assign(
  {},
  GLOBAL_OPTIONS,
  ...Object.values(COMMANDS).flatMap((c) => ('subcommands' in c ? Object.values(c.subcommands) : [c.action]).map((s) => s.options ?? {})),
);

let stdinText: Promise<string> | null = null;
/** Standard input, read once, up to the first line break. */
function readStdinLine(): Promise<string> {
  stdinText ??= new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (c: Buffer) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
  return stdinText.then((text) => text.split(/\r?\n/)[0]);
}

/** Runs the CLI; returns the exit status. */
export async function run(argv: string[], env: Record<string, string | undefined>, out: (line: string) => void): Promise<number> {
  // First pass: find the command words (every option is known here, so option values are not mistaken for them).
  const loose = parseArgs({ args: argv, options: toParseArgsOptions(ALL_OPTIONS), allowPositionals: true, strict: false });
  const [commandName, subName, ...rest] = loose.positionals;
  const wantsHelp = loose.values.help === true || commandName === 'help';
  if (loose.values.version === true && !wantsHelp) {
    // Loaded only here: the runtime lib is heavy beside a CLI that otherwise only speaks HTTP.
    const { versionLine } = await import('@lading/runtime');
    out(versionLine());
    return 0;
  }
  if (!commandName || (commandName === 'help' && !subName)) {
    out(mainHelp());
    return commandName || wantsHelp ? 0 : 2;
  }
  if (commandName === 'help') return run([subName, ...rest, '--help'], env, out);
  const command = COMMANDS[commandName];
  if (!command) throw new UsageError(`unknown command ${JSON.stringify(commandName)}; commands: ${Object.keys(COMMANDS).join(', ')}`);
  if ('action' in command) {
    if (wantsHelp) {
      out(subcommandHelp(command.action));
      return 0;
    }
    return runSubcommand(argv, env, out, [commandName], command.action);
  }
  if (!subName) {
    out(commandHelp(commandName, command));
    return wantsHelp ? 0 : 2;
  }
  const sub = command.subcommands[subName];
  if (!sub) throw new UsageError(`unknown subcommand ${commandName} ${JSON.stringify(subName)}; subcommands: ${Object.keys(command.subcommands).join(', ')}`);
  if (wantsHelp) {
    out(subcommandHelp(sub));
    return 0;
  }
  return runSubcommand(argv, env, out, [commandName, subName], sub);
}

/** Runs a subcommand (or a command that is its own action) named by `words`. */
async function runSubcommand(argv: string[], env: Record<string, string | undefined>, out: (line: string) => void, words: string[], sub: Subcommand): Promise<number> {
  // Second pass: only this subcommand's options.
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: toParseArgsOptions({ ...GLOBAL_OPTIONS, ...(sub.options ?? {}) }), allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split(/\.\s/)[0]} (see ${PROG} ${words.join(' ')} --help)`);
  }
  const args = parsed.positionals.slice(words.length);
  if (args.length !== sub.args.length) {
    throw new UsageError(`${words.join(' ')} takes ${sub.args.length === 0 ? 'no arguments' : sub.args.map((a) => `<${a}>`).join(' ')}; usage: ${PROG} ${sub.usage}`);
  }
  const options = parsed.values as Record<string, string | boolean | undefined>;
  if ([options['password-stdin'], options['user-password-stdin'], options['upstream-password-stdin']].filter(Boolean).length > 1) {
    throw new UsageError('only one password can be read from standard input');
  }

  const base = (options.url as string | undefined) ?? env.LADING_URL ?? 'http://127.0.0.1:5000';
  if (!/^https?:\/\/[^/]/.test(base)) throw new UsageError(`--url must be an http:// or https:// URL, not ${JSON.stringify(base)}`);
  const credentials = async () => {
    const user = (options.user as string | undefined) ?? env.LADING_ADMIN_USER;
    const password = options['password-stdin'] ? await readStdinLine() : ((options.password as string | undefined) ?? env.LADING_ADMIN_PASSWORD);
    if (!user || !password) throw new UsageError('admin credentials are needed: --user and --password (or --password-stdin), or LADING_ADMIN_USER and LADING_ADMIN_PASSWORD');
    return { user, password };
  };
  const userPassword = async () => {
    const password = options['user-password-stdin'] ? await readStdinLine() : ((options['user-password'] as string | undefined) ?? env.LADING_USER_PASSWORD);
    if (!password) throw new UsageError(`the new password is needed: --user-password, --user-password-stdin or LADING_USER_PASSWORD`);
    return password;
  };
  await sub.run({ args, options, api: new Api(base, credentials), out, userPassword, env, base });
  return 0;
}

if (require.main === module) {
  // The wrapper runs the CLI from the repository (where tsx resolves) and names the directory it was started in:
  // relative paths (backup --out, restore --from and --data-dir, LADING_CONFIG, LADING_DATA_DIR) mean that one.
  if (process.env.LADING_ADMIN_CWD) process.chdir(process.env.LADING_ADMIN_CWD);
  run(process.argv.slice(2), process.env, (line) => process.stdout.write(`${line}\n`)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const known = err instanceof UsageError || err instanceof ApiError;
      process.stderr.write(`${PROG}: ${known ? (err as Error).message : `unexpected error: ${(err as Error)?.stack ?? err}`}\n`);
      process.exitCode = err instanceof UsageError ? 2 : 1;
    },
  );
}
