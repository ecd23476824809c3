/**
 * `lading-admin audit`, run as a real process against an embedded registry (auth on): it lists the logins and admin
 * changes the registry recorded, filters by actor and type, pages with --after, prints JSON, and a bad --since is
 * the registry's 400, exit status 1.
 */
import { type ServedRegistry, serveEmbeddedRegistry } from '@lading/embedded/test/served-registry';
import { ADMIN, cli } from './lading-admin-testing';

describe('lading-admin audit', () => {
  let served: ServedRegistry;
  let url: string;

  beforeAll(async () => {
    served = await serveEmbeddedRegistry({ auth: { enabled: true, loginFailureLimit: 1000 }, admin: ADMIN, gc: { enabled: false }, webhooks: { enabled: false } });
    ({ url } = served);
    expect((await cli(['--url', url, 'namespaces', 'create', 'team'])).code).toBe(0);
  });
  afterAll(async () => served?.close());

  const ok = async (args: string[]) => {
    const result = await cli(['--url', url, ...args]);
    expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: '' });
    return result.stdout;
  };

  it('lists the admin change with its admin and the login before it, oldest first', async () => {
    const text = await ok(['audit', '--since', '1h', '--actor', ADMIN.user]);
    const lines = text.trim().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+TYPE\s+ACTOR\s+REPOSITORY\s+WHAT$/);
    expect(text).toMatch(/audit\.admin\s+root\s+-\s+POST namespaces -> 201/);
    expect(text).toMatch(/audit\.login\s+root\s+-\s+success by password from /);
    expect(text).not.toContain(ADMIN.password);
  });

  it('filters by type, pages with --after, and prints JSON', async () => {
    const first = JSON.parse(await ok(['audit', '--type', 'login', '--limit', '1', '--json'])) as { entries: Array<{ type: string }>; next: string };
    expect(first.entries.map((e) => e.type)).toEqual(['io.lading.audit.login']);
    expect(typeof first.next).toBe('string');
    const second = JSON.parse(await ok(['audit', '--type', 'login', '--limit', '1', '--after', first.next, '--json'])) as { entries: Array<{ id: number }> };
    expect(second.entries).toHaveLength(1);
    expect(await ok(['audit', '--type', 'login', '--limit', '1'])).toMatch(/\nmore: --after \S+\n$/);
  });

  it('lists newest first with --order newest, and its next page continues newest first', async () => {
    const oldest = JSON.parse(await ok(['audit', '--type', 'login', '--json'])) as { entries: Array<{ id: number }> };
    const newest = JSON.parse(await ok(['audit', '--type', 'login', '--order', 'newest', '--json'])) as { entries: Array<{ id: number }> };
    // Each call logs in too: the second list may hold logins the first did not, at its top.
    const ids = newest.entries.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(ids).toEqual(expect.arrayContaining(oldest.entries.map((e) => e.id)));
    const text = await ok(['audit', '--type', 'login', '--order', 'newest', '--limit', '1']);
    const next = /\nmore: --order newest --after (\S+)\n$/.exec(text);
    expect(next).not.toBeNull();
    const first = JSON.parse(await ok(['audit', '--type', 'login', '--order', 'newest', '--limit', '2', '--json'])) as { entries: Array<{ id: number }> };
    const second = JSON.parse(await ok(['audit', '--type', 'login', '--order', 'newest', '--limit', '1', '--after', next![1], '--json'])) as { entries: Array<{ id: number }> };
    expect(second.entries[0].id).toBeLessThan(first.entries[0].id);
    const bad = await cli(['--url', url, 'audit', '--order', 'sideways']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/order must be oldest or newest/);
  });

  it('exits 1 with the registry\'s message for a bad --since', async () => {
    const result = await cli(['--url', url, 'audit', '--since', 'yesterday']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/since must be an RFC 3339 time/);
  });
});
