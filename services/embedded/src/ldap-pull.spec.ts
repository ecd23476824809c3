/**
 * Directory sign-in end to end: a real embedded registry with `auth.ldap` pointed at the test directory
 * (tools/infra/slapd), and registry clients that log in with directory passwords as Docker does (Basic credentials
 * at the token endpoint the 401 names). A grant to a group reaches a user through a nested group: pull, not push.
 */
import { type RegistryClient, createRegistryClient } from '@lading/client';
import * as meta from '@lading/metadata';
import { imageManifest, makeBlob, testDirectory } from '@lading/testing';
import { type ServedRegistry, serveEmbeddedRegistry } from '../test/served-registry';

const ADMIN = { username: 'root', password: 'root-password-123' };

describe('pulls by directory users', () => {
  const directory = testDirectory();
  let served: ServedRegistry;
  const clients: RegistryClient[] = [];
  const config = makeBlob(`{"os":"linux","ldap":${Date.now()}}`);
  const manifest = imageManifest(config, []);

  function clientOf(username: string, password: string): RegistryClient {
    const client = createRegistryClient({ url: served.url, credentials: { username, password }, timeoutMs: 20_000 });
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    served = await serveEmbeddedRegistry({
      auth: {
        enabled: true,
        ldap: {
          url: directory.url,
          bindDn: directory.adminDn,
          bindPassword: directory.adminPassword,
          userBase: `ou=people,${directory.base}`,
          groupBase: `ou=groups,${directory.base}`,
        },
      },
      admin: { user: ADMIN.username, password: ADMIN.password },
    });
    await meta.upsertNamespace(served.registry.db, 'plat', false);
    await meta.addGrant(served.registry.db, 'plat', 'group', 'platform', 'pull');
    const push = await clientOf(ADMIN.username, ADMIN.password).pushImage('plat/app', 'v1', manifest, [config]);
    expect(push.status).toBe(201);
  });
  afterAll(async () => {
    for (const client of clients) await client.close();
    await served?.close();
  });

  it('lets a member of a nested group pull from a private namespace granted to the outer group, and refuses its push', async () => {
    const alice = clientOf('alice', 'alice-directory-pw');
    const pulled = await alice.getManifest('plat/app', 'v1');
    expect(pulled.status).toBe(200);
    expect(pulled.body.equals(manifest.body)).toBe(true);
    const pushed = await alice.putManifest('plat/app', 'v2', { mediaType: manifest.mediaType, body: manifest.body });
    expect(pushed.status).toBeGreaterThanOrEqual(401);
    expect(pushed.status).toBeLessThanOrEqual(403);
  });

  it('lists a repository granted to its group in search and the console listing, to members only', async () => {
    const listed = async (username: string, password: string) => {
      const token = await fetch(`${served.url}/token`, {
        headers: { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` },
      });
      expect(token.status).toBe(200);
      const bearer = { authorization: `Bearer ${((await token.json()) as { token: string }).token}` };
      const search = (await (await fetch(`${served.url}/api/v1/search?q=app`, { headers: bearer })).json()) as { results: { repository: string }[] };
      const repositories = (await (await fetch(`${served.url}/api/v1/repositories`, { headers: bearer })).json()) as { repositories: { name: string }[] };
      return { search: search.results.map((r) => r.repository), repositories: repositories.repositories.map((r) => r.name) };
    };
    expect(await listed('alice', 'alice-directory-pw')).toEqual({ search: ['plat/app'], repositories: ['plat/app'] });
    expect(await listed('bob', 'bob-directory-pw')).toEqual({ search: [], repositories: [] });
  });

  it('refuses the pull to a directory user in no granted group, and to a wrong directory password', async () => {
    expect((await clientOf('bob', 'bob-directory-pw').getManifest('plat/app', 'v1')).status).toBeGreaterThanOrEqual(401);
    // the token endpoint itself refuses the wrong password, which the client reports as an error
    await expect(clientOf('alice', 'wrong-password').getManifest('plat/app', 'v1')).rejects.toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
  });
});
