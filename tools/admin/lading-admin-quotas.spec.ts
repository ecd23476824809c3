/**
 * `lading-admin quotas ...` and `lading-admin usage`, run as a real process against an embedded registry (auth off,
 * an admin in the database): quotas are set with sizes as people write them, listed with what is used, removed;
 * usage is reported per namespace and per repository; a size that is no size fails with one clear line.
 */
import { hashPassword } from '@lading/access';
import { type ServedRegistry, pushImage, serveEmbeddedRegistry } from '@lading/embedded/test/served-registry';
import * as meta from '@lading/metadata';
import { imageManifest, makeBlob } from '@lading/testing';
import { ADMIN, cli } from './lading-admin-testing';
import { formatBytes, parseByteSize } from './byte-size';

describe('lading-admin quotas and usage', () => {
  let served: ServedRegistry;

  beforeAll(async () => {
    served = await serveEmbeddedRegistry({ gc: { enabled: false } });
    await meta.createUser(served.registry.db, ADMIN.user, await hashPassword(ADMIN.password), true);
    await meta.upsertNamespace(served.registry.db, 'team', false);
    const config = makeBlob('{"os":"linux"}');
    const layer = makeBlob(3000);
    expect(await pushImage(served.client, 'team/app', 'v1', imageManifest(config, [layer]), [config, layer])).toBe(201);
  });
  afterAll(async () => served?.close());

  const ok = async (args: string[]) => {
    const result = await cli(['--url', served.url, ...args]);
    expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: '' });
    return result.stdout;
  };

  it('sets a quota from a size people write, lists it with its usage, reports usage and removes it', async () => {
    expect(await ok(['quotas', 'set', 'team', '1.5MiB'])).toBe('quota of team: 1.5 MiB (2.9 KiB used)\n');
    expect(await ok(['quotas', 'list'])).toMatch(/^NAMESPACE +QUOTA +USED\nteam +1\.5 MiB +2\.9 KiB\n$/);
    expect(await ok(['usage'])).toMatch(/^NAMESPACE +BYTES +QUOTA +BLOBS +MANIFESTS +TAGS +REPOSITORIES\nteam +2\.9 KiB +1\.5 MiB +2 +1 +1 +1\n$/);
    expect(await ok(['usage', '--namespace', 'team'])).toMatch(/^team: 2\.9 KiB of 1\.5 MiB in 2 blobs\nREPOSITORY +BYTES +BLOBS +MANIFESTS +TAGS\nteam\/app +2\.9 KiB +2 +1 +1\n$/);
    expect(JSON.parse(await ok(['usage', '--namespace', 'team', '--json'])).repositories).toEqual([{ name: 'team/app', bytes: 3014, blobs: 2, manifests: 1, tags: 1 }]);
    expect(await ok(['quotas', 'remove', 'team'])).toBe('removed the quota of team\n');
    expect(await ok(['quotas', 'list'])).toBe('no quotas\n');
  });

  it('refuses a size that is no size with a usage error, changing nothing', async () => {
    const result = await cli(['--url', served.url, 'quotas', 'set', 'team', 'lots']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/"lots" is not a size/);
    expect(await meta.namespacesWithQuota(served.registry.db)).toEqual([]);
  });

  it('reads and writes sizes in SI and binary units', () => {
    expect(parseByteSize('500MB')).toBe(500_000_000);
    expect(parseByteSize('10GiB')).toBe(10 * 2 ** 30);
    expect(parseByteSize('1234')).toBe(1234);
    expect(parseByteSize(' 2 kib ')).toBe(2048);
    expect(() => parseByteSize('-1GB')).toThrow(/not a size/);
    expect(() => parseByteSize('5 parsecs')).toThrow(/not a size/);
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(10 * 2 ** 30)).toBe('10 GiB');
  });
});
