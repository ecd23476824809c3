/**
 * `lading-admin namespaces update` (immutable tags) and `lading-admin repositories delete`, run as a real process
 * against a served embedded registry: rules are set and listed, an immutable tag holds a repository until --force,
 * and refusals are one clear line with a non-zero exit status. A namespace admin runs it with its own credentials
 * for its namespace (issue 24). `repositories delete` works the same against a distributed registry (gateway, auth
 * service, manifest replicas over PostgreSQL).
 */
import { type ServedRegistry, pushImage, serveEmbeddedRegistry } from '@lading/embedded/test/served-registry';
import { serveDistributedRegistry } from '@lading/embedded/test/distributed-registry';
import * as meta from '@lading/metadata';
import { imageManifest, makeBlob } from '@lading/testing';
import { ADMIN, cli } from './lading-admin-testing';

describe('lading-admin governance', () => {
  let served: ServedRegistry;

  beforeAll(async () => {
    served = await serveEmbeddedRegistry({ admin: ADMIN, gc: { enabled: false } });
  });
  afterAll(async () => served?.close());

  const run = (args: string[]) => cli(['--url', served.url, ...args]);
  const ok = async (args: string[]) => {
    const result = await run(args);
    expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: '' });
    return result.stdout;
  };

  it('sets immutable tags on a namespace, and deletes a repository holding one only with --force', async () => {
    await ok(['namespaces', 'create', 'rel']);
    expect(await ok(['namespaces', 'update', 'rel', '--immutable-tags', 'v*,release-*', '--except', 'latest'])).toBe('namespace rel is private; immutable tags v*,release-* except latest\n');
    expect(await ok(['namespaces', 'list'])).toMatch(/^PREFIX +PUBLIC +IMMUTABLE-TAGS +EXCEPT +GRANTS\nrel +no +v\*,release-\* +latest +-\n$/);

    const config = makeBlob('{"architecture":"amd64","os":"linux"}');
    const layer = makeBlob(512);
    expect(await pushImage(served.client, 'rel/app', 'v1', imageManifest(config, [layer]), [config, layer])).toBe(201);

    const refused = await run(['repositories', 'delete', 'rel/app']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^lading-admin: repository rel\/app holds immutable tag v1 \(rule 'v\*' of namespace 'rel'\): delete it with force=true \(403 DENIED\)\n$/);
    expect(await meta.findRepository(served.registry.db, 'rel/app')).not.toBeNull();

    expect(await ok(['repositories', 'delete', 'rel/app', '--force'])).toBe('deleted repository rel/app: 1 tags, 1 manifests, 0 upload sessions; 2 blobs queued for collection\n');
    expect(await meta.findRepository(served.registry.db, 'rel/app')).toBeNull();

    expect(await ok(['namespaces', 'update', 'rel', '--immutable-tags', ''])).toBe('namespace rel is private; no immutable tags\n');
  });

  it('fails with one clear line and a non-zero exit status, changing nothing', async () => {
    const nothing = await run(['namespaces', 'update', 'rel']);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/^lading-admin: namespaces update needs --public, --private, --immutable-tags or --except/);
    const bad = await run(['namespaces', 'update', 'rel', '--immutable-tags', 'a/b']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/immutableTags must be a list of at most 64 tag globs.*\(400 UNSUPPORTED\)\n$/);
    const missing = await run(['repositories', 'delete', 'no/such']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/NAME_UNKNOWN/);
  });

  it("works for a namespace admin: its namespace's robots, grants and tag rules, and a clear refusal beyond it", async () => {
    await ok(['namespaces', 'create', 'crew']);
    await ok(['namespaces', 'create', 'elsewhere']);
    await ok(['users', 'create', 'nadia', '--user-password', 'nadia-password']);
    await ok(['grants', 'add', 'crew', 'user:nadia', 'admin']);
    const nadia = (args: string[]) => cli(['--url', served.url, ...args], { env: { LADING_ADMIN_USER: 'nadia', LADING_ADMIN_PASSWORD: 'nadia-password' } });
    const asNadia = async (args: string[]) => {
      const result = await nadia(args);
      expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: '' });
      return result.stdout;
    };

    expect(await asNadia(['robots', 'create', 'ci', '--namespace', 'crew'])).toMatch(/^created robot crew\+ci\nlogin: +robot\$crew\+ci\n/);
    expect(await asNadia(['grants', 'add', 'crew', 'robot$crew+ci', 'push'])).toBe('granted push on crew to robot$crew+ci\n');
    expect(await asNadia(['namespaces', 'update', 'crew', '--immutable-tags', 'v*'])).toBe('namespace crew is private; immutable tags v*\n');
    expect(await asNadia(['robots', 'list'])).toMatch(/^NAME +NAMESPACE +LOGIN .*\ncrew\+ci +crew +robot\$crew\+ci /);
    expect(await asNadia(['grants', 'list'])).toMatch(/^PREFIX +PRINCIPAL +ROLE\n(crew .*\n)+$/);

    const beyond = await nadia(['grants', 'add', 'elsewhere', 'user:nadia', 'push']);
    expect(beyond.code).toBe(1);
    expect(beyond.stderr).toMatch(/^lading-admin: .*namespace.*\(403 DENIED\)\n$/);
    const users = await nadia(['users', 'list']);
    expect(users.code).toBe(1);
    expect(users.stderr).toMatch(/\(403 DENIED\)\n$/);
    expect((await meta.findNamespace(served.registry.db, 'elsewhere'))!.grants).toEqual([]);
  });

  it('deletes a repository of a distributed registry the same way', async () => {
    const distributed = await serveDistributedRegistry('admin_cli_delete', ADMIN);
    try {
      const config = makeBlob('{"architecture":"amd64","os":"linux","distributed":true}');
      const layer = makeBlob(512);
      expect(await pushImage(distributed.client, 'team/app', 'v1', imageManifest(config, [layer]), [config, layer])).toBe(201);
      const result = await cli(['--url', distributed.url, 'repositories', 'delete', 'team/app']);
      expect(result).toEqual({ code: 0, stdout: 'deleted repository team/app: 1 tags, 1 manifests, 0 upload sessions; 2 blobs queued for collection\n', stderr: '' });
      expect(await meta.findRepository(distributed.db, 'team/app')).toBeNull();
      const missing = await cli(['--url', distributed.url, 'repositories', 'delete', 'team/app']);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/NAME_UNKNOWN/);
    } finally {
      await distributed.close();
    }
  });
});
