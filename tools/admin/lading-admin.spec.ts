/**
 * The admin CLI, run as a real process (node --import tsx) against an embedded registry with auth on, listening on
 * an ephemeral loopback port in this process.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '@lading/config';
import { EmbeddedRegistry, createEmbeddedRegistry } from '@lading/embedded';
import { createLogger } from '@lading/telemetry';
import { ADMIN, cli, cliAll } from './lading-admin-testing';

describe('lading-admin', () => {
  let dir: string;
  let registry: EmbeddedRegistry;
  let server: Server;
  let url: string;

  async function tokenStatus(user: string, password: string, scope = 'repository:team/app:push'): Promise<{ status: number; actions?: string[] }> {
    const res = await fetch(`${url}/token?service=lading&scope=${encodeURIComponent(scope)}`, {
      headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
    });
    if (res.status !== 200) return { status: res.status };
    const { token } = (await res.json()) as { token: string };
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as { access: Array<{ actions: string[] }> };
    return { status: 200, actions: claims.access[0]?.actions };
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-admin-cli-'));
    registry = await createEmbeddedRegistry(
      parseConfig({ data: { dir }, auth: { enabled: true }, admin: ADMIN, log: { level: 'silent', access: false } }),
      createLogger({ service: 'test', level: 'silent' }),
    );
    server = registry.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    if (server) await new Promise((resolve) => server.close(resolve));
    await registry?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('manages users, namespaces, grants, robots, tokens and keys against a live registry', async () => {
    const base = ['--url', url];
    const ok = async (args: string[], options?: Parameters<typeof cli>[1]) => {
      const result = await cli([...base, ...args], options);
      expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: '' });
      return result.stdout;
    };
    // Independent commands run side by side; each stage checks what the previous ones did.
    const [created, namespace, robot] = await Promise.all([
      ok(['users', 'create', 'alice', '--user-password', 'alice-password']),
      ok(['namespaces', 'create', 'team']),
      ok(['robots', 'create', 'ci', '--expires-in', '720h']),
    ]);
    expect(created).toBe('created user alice\n');
    expect(namespace).toBe('namespace team is private\n');
    expect(robot).toMatch(/^created robot ci\nlogin: {2}robot\$ci\nsecret: lrs_\S+\n\(the secret is shown only this once/);
    const secret = /secret: (\S+)/.exec(robot)?.[1] as string;

    const [granted, , pat] = await Promise.all([
      ok(['grants', 'add', 'team', 'user:alice', 'push']),
      ok(['grants', 'add', 'team', 'robot$ci', 'pull']),
      ok(['tokens', 'create', 'alice', 'laptop']),
    ]);
    expect(granted).toBe('granted push on team to user:alice\n');
    const token = /token: (lpat_\S+)/.exec(pat)?.[1] as string;
    expect(await tokenStatus('alice', 'alice-password')).toEqual({ status: 200, actions: ['push'] });
    expect(await tokenStatus('robot$ci', secret, 'repository:team/app:pull,push')).toEqual({ status: 200, actions: ['pull'] });
    expect((await tokenStatus('alice', token)).status).toBe(200);

    const [users, namespaces, grants, robots, tokens] = await Promise.all([
      ok(['users', 'list', '--json']),
      ok(['namespaces', 'list']),
      ok(['grants', 'list', '--prefix', 'team']),
      ok(['robots', 'list']),
      ok(['tokens', 'list', 'alice']),
      // The new password from standard input, the admin's credentials from flags instead of the environment.
      ok(['users', 'passwd', 'alice', '--user-password-stdin', '--user', ADMIN.user, '--password', ADMIN.password], {
        stdin: 'alice-password-2\n',
        env: { LADING_ADMIN_USER: '', LADING_ADMIN_PASSWORD: '' },
      }),
    ]);
    expect((JSON.parse(users) as { users: Array<{ name: string; isAdmin: boolean }> }).users.map((u) => [u.name, u.isAdmin])).toEqual([
      ['alice', false],
      ['root', true],
    ]);
    expect(namespaces).toMatch(/^PREFIX +PUBLIC +IMMUTABLE-TAGS +EXCEPT +GRANTS\nteam +no +- +- +robot:ci=pull, user:alice=push\n$/);
    expect(grants).toMatch(/^PREFIX +PRINCIPAL +ROLE\nteam +robot:ci +pull\nteam +user:alice +push\n$/);
    expect(robots).toMatch(/^NAME +NAMESPACE +LOGIN +EXPIRES +REVOKED +CREATED BY\nci +\(global\) +robot\$ci +\d{4}-\S+ +- +root\n$/);
    expect(tokens).toMatch(/^NAME +EXPIRES +REVOKED\nlaptop +- +-\n$/);
    expect((await tokenStatus('alice', 'alice-password')).status).toBe(401);
    expect((await tokenStatus('alice', 'alice-password-2')).status).toBe(200);

    const [, , , rotated] = await Promise.all([
      ok(['robots', 'revoke', 'ci']),
      ok(['tokens', 'revoke', 'alice', 'laptop']),
      ok(['grants', 'remove', 'team', 'user:alice', 'push']),
      ok(['keys', 'rotate']),
    ]);
    expect((await tokenStatus('robot$ci', secret)).status).toBe(401);
    expect((await tokenStatus('alice', token)).status).toBe(401);
    expect(await tokenStatus('alice', 'alice-password-2')).toEqual({ status: 200, actions: [] });
    const kid = /^signing with new key (\S+)\n$/.exec(rotated)?.[1];
    const jwks = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid)).toContain(kid);

    expect(await ok(['users', 'disable', 'alice'])).toBe('disabled alice\n');
    expect((await tokenStatus('alice', 'alice-password-2')).status).toBe(401);
    expect(await ok(['users', 'enable', 'alice'])).toBe('enabled alice\n');
    expect((await tokenStatus('alice', 'alice-password-2')).status).toBe(200);
    await Promise.all([ok(['users', 'delete', 'alice']), ok(['namespaces', 'delete', 'team'])]);
    expect((await tokenStatus('alice', 'alice-password-2')).status).toBe(401);
    expect(await ok(['namespaces', 'list'])).toBe('no namespaces\n');
  });

  it('grants a role to a directory group (group:NAME), lists it and removes it', async () => {
    const ok = async (args: string[]) => {
      const result = await cli(['--url', url, ...args]);
      expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: '' });
      return result.stdout;
    };
    await ok(['namespaces', 'create', 'plat']);
    expect(await ok(['grants', 'add', 'plat', 'group:platform', 'pull'])).toBe('granted pull on plat to group:platform\n');
    expect(await ok(['grants', 'list', '--prefix', 'plat'])).toMatch(/^PREFIX +PRINCIPAL +ROLE\nplat +group:platform +pull\n$/);
    await ok(['grants', 'remove', 'plat', 'group:platform', 'pull']);
    expect(await ok(['grants', 'list', '--prefix', 'plat'])).toBe('no grants\n');
    await ok(['namespaces', 'delete', 'plat']);
  });

  it('fails with one clear line on standard error and a non-zero exit status', async () => {
    const base = ['--url', url];
    // A loopback port nobody listens on.
    const probe = createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => probe.once('listening', resolve));
    const closed = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise((resolve) => probe.close(resolve));
    const cases: Array<{ args: string[]; env?: Record<string, string>; code: number; error: RegExp }> = [
      { args: [...base, 'users', 'list'], env: { LADING_ADMIN_PASSWORD: 'wrong-password' }, code: 1, error: /^lading-admin: invalid username or password \(401 UNAUTHORIZED\)\n$/ },
      { args: [...base, 'users', 'create', 'root', '--user-password', 'long-enough'], code: 1, error: /^lading-admin: user root exists \(409 DENIED\)\n$/ },
      { args: [...base, 'users', 'delete', 'nobody'], code: 1, error: /^lading-admin: user not found \(404 NOT_FOUND\)\n$/ },
      { args: [...base, 'users', 'create', 'bob', '--user-password', 'short'], code: 1, error: /^lading-admin: password must have at least 8 characters \(400 UNSUPPORTED\)\n$/ },
      { args: ['--url', closed, 'users', 'list'], code: 1, error: new RegExp(`^lading-admin: cannot reach ${closed}: ECONNREFUSED\n$`) },
      { args: [...base, 'users', 'list'], env: { LADING_ADMIN_USER: '', LADING_ADMIN_PASSWORD: '' }, code: 2, error: /^lading-admin: admin credentials are needed/ },
      { args: [...base, 'users', 'create', 'bob'], code: 2, error: /^lading-admin: the new password is needed/ },
      { args: ['frobnicate'], code: 2, error: /^lading-admin: unknown command "frobnicate"; commands: login, users, robots, tokens, namespaces, repositories, grants, webhook, keys, proxies, quotas, usage, audit, backup, restore\n$/ },
      { args: ['users', 'frob'], code: 2, error: /^lading-admin: unknown subcommand users "frob"/ },
      { args: ['users', 'delete'], code: 2, error: /^lading-admin: users delete takes <name>; usage: lading-admin users delete <name>\n$/ },
      { args: ['users', 'list', '--bogus'], code: 2, error: /^lading-admin: Unknown option '--bogus' \(see lading-admin users list --help\)\n$/ },
      { args: ['grants', 'add', 'team', 'alice', 'push'], code: 2, error: /^lading-admin: principal must be user:<name> or robot:<name>/ },
      { args: ['grants', 'add', 'team', 'user:alice', 'owner'], code: 2, error: /^lading-admin: role must be one of pull, push, delete, admin/ },
      { args: ['--url', 'ftp://x', 'users', 'list'], code: 2, error: /^lading-admin: --url must be an http/ },
    ];
    const results = await cliAll(cases);
    for (const [i, result] of results.entries()) {
      const { args, code, error } = cases[i];
      expect({ args, code: result.code, stdout: result.stdout }).toEqual({ args, code, stdout: '' });
      expect(result.stderr).toMatch(error);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    }
    // Without a subcommand: the command's help, but a usage error all the same.
    const bare = await cli(['users']);
    expect(bare.code).toBe(2);
    expect(bare.stdout).toMatch(/^usage: lading-admin users <subcommand>/);
  });
});
