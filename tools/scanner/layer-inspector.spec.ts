/**
 * The scanner's inspection of configs and layers, on archives the tests build: what a layer holds is counted from
 * its tar headers, whatever the chunking of the stream, and bad bytes are reported as unreadable, not crashed on.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { inspectConfig, isRootUser } from './config-inspector';
import { LayerUnreadableError, MAX_LISTED_PATHS, detectCompression, inspectLayer } from './layer-inspector';
import { summarise } from './scan-report';
import { TarHeaderReader } from './tar-header-reader';
import { buildTar, dpkgStatus, knownImage } from './test-layers';

/** Streams bytes in chunks of `size` (odd sizes cut headers and contents at every possible place). */
async function* chunked(bytes: Buffer, size: number): AsyncIterable<Buffer> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

describe('layer inspection', () => {
  const image = knownImage('fixed');

  it('counts the files, bytes, setuid and world-writable entries and the packages of a gzip and a zstd layer', async () => {
    const base = await inspectLayer(chunked(image.layers[0].data, 64 * 1024));
    expect(base.files).toBe(4);
    expect(base.directories).toBe(3);
    expect(base.symlinks).toBe(1);
    expect(base.setuid).toEqual({ count: 1, paths: ['/bin/su'] });
    // /tmp is 1777 (sticky) and /bin/sh a symlink: neither is a world-writable finding.
    expect(base.worldWritable).toEqual({ count: 0, paths: [] });
    expect(base.packageDatabases).toEqual([{ path: '/var/lib/dpkg/status', manager: 'dpkg', packages: 5 }]);

    const app = await inspectLayer(chunked(image.layers[1].data, 64 * 1024));
    expect(app.files).toBe(3);
    expect(app.totalFileBytes).toBe(Buffer.byteLength('C:Q1abc=\nP:musl\nV:1.2\n\nC:Q1def=\nP:busybox\nV:1.36\n\n') + 1000 + 'long path'.length);
    expect(app.worldWritable.paths).toEqual(['/srv/app/data.log']);
    expect(app.packageDatabases).toEqual([{ path: '/lib/apk/db/installed', manager: 'apk', packages: 2 }]);
  });

  it('reads a zstd layer as GNU tar and the zstd CLI write it (one frame with a checksum, GNU long names)', async () => {
    // Made with: tar --format=gnu --owner=0 --group=0 --numeric-owner --mtime=@0 --sort=name -C root -c . | zstd -19 --check
    const layer = readFileSync(path.join(__dirname, 'test', 'gnu-tar-layer.tar.zst'));
    expect(detectCompression(layer)).toBe('zstd');
    const deep = `/srv/${'nested-directory/'.repeat(7)}app.log`;
    const expected = {
      files: 3,
      directories: 15,
      symlinks: 1,
      totalFileBytes: 8 + 4 + 171,
      setuid: { count: 1, paths: ['/usr/bin/passwd'] },
      setgid: { count: 0, paths: [] },
      worldWritable: { count: 1, paths: [deep] },
      packageDatabases: [{ path: '/var/lib/dpkg/status', manager: 'dpkg', packages: 3 }],
      whiteouts: { count: 0, paths: [] },
    };
    expect(await inspectLayer(chunked(layer, 1 << 20))).toEqual(expected);
    for (const size of [1, 7, 100]) expect(await inspectLayer(chunked(layer, size))).toEqual(expected);
  });

  it('reads a zstd layer as skopeo writes it (containers/image, Go’s klauspost/compress encoder)', async () => {
    // Made with: crane append of a tar holding ./hello, then skopeo copy --dest-compress --dest-compress-format zstd
    // to an oci: layout; the layer blob as stored.
    const layer = readFileSync(path.join(__dirname, 'test', 'skopeo-zstd-layer.tar.zst'));
    const findings = await inspectLayer(chunked(layer, 64));
    expect(findings).toMatchObject({ files: 1, directories: 1, symlinks: 0, totalFileBytes: 'hello\n'.length, packageDatabases: [] });
  });

  it('reads zstd in several frames and past skippable frames (zstd:chunked), as the gzip of the same tar reads', async () => {
    const tar = buildTar([
      { path: 'opt/blob.bin', content: randomBytes(300_000) },
      { path: 'var/lib/dpkg/status', content: dpkgStatus(['a', 'b', 'c', 'd']) },
      { path: 'usr/bin/su', content: 's', mode: 0o4755 },
    ]);
    const expected = await inspectLayer(chunked(gzipSync(tar), 1 << 20));
    expect(expected.packageDatabases).toEqual([{ path: '/var/lib/dpkg/status', manager: 'dpkg', packages: 4 }]);
    const skippable = (magic: number, payload: Buffer) => {
      const header = Buffer.alloc(8);
      header.writeUInt32LE(magic, 0);
      header.writeUInt32LE(payload.length, 4);
      return Buffer.concat([header, payload]);
    };
    // Frames cut inside the blob, inside a header and inside the package database; a table of contents at the end.
    const cuts = [0, 150_000, 300_700, 301_900, tar.length];
    const frames = cuts.slice(1).map((end, i) => zstdCompressSync(tar.subarray(cuts[i], end)));
    const chunkedLayer = Buffer.concat([...frames, skippable(0x184d2a50, Buffer.from('{"toc":"not tar"}'))]);
    const leadingSkippable = Buffer.concat([skippable(0x184d2a5f, randomBytes(40)), zstdCompressSync(tar)]);
    expect(detectCompression(leadingSkippable)).toBe('zstd');
    for (const layer of [zstdCompressSync(tar), chunkedLayer, leadingSkippable]) {
      expect(await inspectLayer(chunked(layer, 1 << 20))).toEqual(expected);
      expect(await inspectLayer(chunked(layer, 4093))).toEqual(expected);
    }
  });

  it('reads a path longer than 100 bytes from its pax record', async () => {
    const tar = buildTar([{ path: `a/${'very-long-directory-name/'.repeat(8)}setuid-tool`, content: 'x', mode: 0o4711 }]);
    const findings = await inspectLayer(chunked(tar, 512));
    expect(findings.setuid.paths).toEqual([`/a/${'very-long-directory-name/'.repeat(8)}setuid-tool`]);
    expect(findings.files).toBe(1);
  });

  it('finds the same things whatever the chunking, down to 7-byte chunks', async () => {
    const big = randomBytes(3 * 1024 * 1024 + 17);
    const tar = buildTar([
      { path: 'opt/blob.bin', content: big },
      { path: 'var/lib/dpkg/status', content: dpkgStatus(['a', 'b', 'c']) },
      { path: 'usr/bin/passwd', content: 'p', mode: 0o4755 },
      { path: 'usr/bin/wall', content: 'w', mode: 0o2755 },
    ]);
    const gz = gzipSync(tar);
    const expected = await inspectLayer(chunked(gz, 1 << 20));
    expect(expected.totalFileBytes).toBe(big.length + Buffer.byteLength(dpkgStatus(['a', 'b', 'c'])) + 2);
    expect(expected.packageDatabases[0].packages).toBe(3);
    expect(expected.setgid.paths).toEqual(['/usr/bin/wall']);
    for (const size of [511, 513, 4096]) {
      expect(await inspectLayer(chunked(tar, size))).toEqual(expected);
    }
    expect(await inspectLayer(chunked(gz, 1000))).toEqual(expected);
    // Headers, pax records and a package database cut every 7 bytes.
    for (const layer of knownImage('fixed').layers) {
      expect(await inspectLayer(chunked(layer.data, 7))).toEqual(await inspectLayer(chunked(layer.data, 1 << 20)));
    }
    const small = buildTar([{ path: `x/${'y'.repeat(120)}`, content: 'z', mode: 0o4755 }, { path: 'var/lib/dpkg/status', content: dpkgStatus(['a', 'b']) }]);
    expect(await inspectLayer(chunked(small, 7))).toEqual(await inspectLayer(chunked(small, 1 << 20)));
  });

  it('counts the packages of a distroless image (one file per package in status.d)', async () => {
    const tar = buildTar([
      { path: 'var/lib/dpkg/status.d/libc6', content: 'Package: libc6\n' },
      { path: 'var/lib/dpkg/status.d/libc6.md5sums', content: 'abc  lib/x\n' },
      { path: 'var/lib/dpkg/status.d/tzdata', content: 'Package: tzdata\n' },
    ]);
    expect((await inspectLayer(chunked(tar, 1000))).packageDatabases).toEqual([{ path: '/var/lib/dpkg/status.d/', manager: 'dpkg', packages: 2 }]);
  });

  it('caps the listed paths but keeps the exact count', async () => {
    const entries = Array.from({ length: MAX_LISTED_PATHS + 10 }, (_, i) => ({ path: `w/${i}`, content: '', mode: 0o666 }));
    const findings = await inspectLayer(chunked(buildTar(entries), 4096));
    expect(findings.worldWritable.count).toBe(MAX_LISTED_PATHS + 10);
    expect(findings.worldWritable.paths).toHaveLength(MAX_LISTED_PATHS);
  });

  it('reports random bytes, a corrupted header, truncated gzip and zstd streams and a bad checksum as unreadable layers', async () => {
    await expect(inspectLayer(chunked(randomBytes(4096), 1000))).rejects.toThrow(LayerUnreadableError);
    const tar = buildTar([{ path: 'etc/passwd', content: 'root:x:0:0' }]);
    const corrupted = Buffer.from(tar);
    corrupted[10] ^= 0xff;
    await expect(inspectLayer(chunked(corrupted, 1000))).rejects.toThrow(/checksum mismatch/);
    const gz = gzipSync(buildTar([{ path: 'big', content: randomBytes(100_000) }]));
    await expect(inspectLayer(chunked(gz.subarray(0, gz.length / 2), 1000))).rejects.toThrow(LayerUnreadableError);
    const zst = zstdCompressSync(buildTar([{ path: 'big', content: randomBytes(100_000) }]));
    await expect(inspectLayer(chunked(zst.subarray(0, zst.length / 2), 1000))).rejects.toThrow(/not a readable zstd tar archive/);
    const flipped = Buffer.from(readFileSync(path.join(__dirname, 'test', 'gnu-tar-layer.tar.zst')));
    flipped[flipped.length - 2] ^= 0xff; // in the frame's XXH64 checksum
    await expect(inspectLayer(chunked(flipped, 1000))).rejects.toThrow(LayerUnreadableError);
    // A tar cut in the middle of a file's content.
    await expect(inspectLayer(chunked(buildTar([{ path: 'f', content: randomBytes(5000) }]).subarray(0, 2048), 300))).rejects.toThrow(/middle of an entry/);
  });

  it('passes a failure of the source on as it is (a network error is retried, not reported)', async () => {
    const failing = (async function* () {
      yield gzipSync(buildTar([{ path: 'a', content: 'a' }])).subarray(0, 10);
      throw new Error('connection reset');
    })();
    const err = await inspectLayer(failing).catch((e: unknown) => e);
    expect((err as Error).message).toBe('connection reset');
    expect(err).not.toBeInstanceOf(LayerUnreadableError);
  });

  it('skips file contents without handing them to anyone unless asked', () => {
    const seen: string[] = [];
    const reader = new TarHeaderReader((entry) => {
      seen.push(entry.path);
    });
    reader.write(buildTar([{ path: './a/b', content: 'x'.repeat(1500) }, { path: '/c', kind: 'directory' }]));
    expect(reader.end()).toEqual({ entries: 2 });
    expect(seen).toEqual(['a/b', 'c']);
  });
});

describe('config inspection', () => {
  it('says who the container runs as, which ports it exposes and which env names look like secrets (never their values)', () => {
    const findings = inspectConfig(JSON.parse(knownImage('fixed').config.data.toString()));
    expect(findings).toMatchObject({ os: 'linux', architecture: 'amd64', user: '', runsAsRoot: true, exposedPorts: ['8080/tcp'], secretLikeEnv: ['DB_PASSWORD'] });
    expect(JSON.stringify(findings)).not.toContain('hunter2');
  });

  it('tells root from other users', () => {
    expect(['', 'root', '0', '0:0', 'root:wheel'].map(isRootUser)).toEqual([true, true, true, true, true]);
    expect(['app', '1000', '1000:0', 'nobody:nogroup'].map(isRootUser)).toEqual([false, false, false, false]);
  });

  it('gives empty findings for a config that is not an image config', () => {
    expect(inspectConfig({})).toMatchObject({ os: null, runsAsRoot: true, exposedPorts: [], secretLikeEnv: [] });
    expect(inspectConfig('nonsense')).toMatchObject({ os: null, exposedPorts: [] });
  });
});

describe('the summary over layers', () => {
  it('lets an upper layer delete or replace a lower layer’s package database', async () => {
    const lower = await inspectLayer(chunked(buildTar([{ path: 'var/lib/dpkg/status', content: dpkgStatus(['a', 'b']) }]), 4096));
    const replaced = await inspectLayer(chunked(buildTar([{ path: 'var/lib/dpkg/status', content: dpkgStatus(['a', 'b', 'c']) }]), 4096));
    const deleted = await inspectLayer(chunked(buildTar([{ path: 'var/lib/dpkg/.wh.status', content: '' }]), 4096));
    const config = inspectConfig({ config: { User: 'app' } });
    const layer = (findings: typeof lower) => ({ digest: 'sha256:x', mediaType: 'x', size: 1, findings });
    expect(summarise(config, [layer(lower), layer(replaced)]).summary.packageDatabases).toEqual([{ path: '/var/lib/dpkg/status', manager: 'dpkg', packages: 3 }]);
    const gone = summarise(config, [layer(lower), layer(deleted)]);
    expect(gone.summary.packageDatabases).toEqual([]);
    expect(gone.findings.map((f) => f.message)).toEqual(['no package database found (static, distroless-without-dpkg or scratch image)']);
  });
});
