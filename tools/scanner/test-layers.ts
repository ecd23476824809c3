/**
 * Builders of real image layers for the scanner's tests: ustar archives (with a pax header for long paths),
 * gzipped, and a small image made of them with the facts the tests check (a setuid file, a world-writable file,
 * a dpkg status file listing known packages, an apk database, a config running as root with a secret-like env).
 */
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { TestBlob, TestManifest, imageManifest, makeBlob } from '@lading/testing';

/** One entry of a test archive. */
export interface TarSpec {
  path: string;
  kind?: 'file' | 'directory' | 'symlink';
  content?: string | Buffer;
  mode?: number;
  linkTarget?: string;
}

function octal(value: number, length: number): string {
  return value.toString(8).padStart(length - 1, '0') + '\0';
}

function headerBlock(fields: { name: string; mode: number; size: number; typeflag: string; linkname?: string }): Buffer {
  const block = Buffer.alloc(512);
  block.write(fields.name, 0, 100, 'utf8');
  block.write(octal(fields.mode, 8), 100, 'ascii');
  block.write(octal(0, 8), 108, 'ascii');
  block.write(octal(0, 8), 116, 'ascii');
  block.write(octal(fields.size, 12), 124, 'ascii');
  block.write(octal(1_700_000_000, 12), 136, 'ascii');
  block.write(fields.typeflag, 156, 'ascii');
  block.write(fields.linkname ?? '', 157, 100, 'utf8');
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  block.write('root', 265, 'ascii');
  block.write('root', 297, 'ascii');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return block;
}

function padded(data: Buffer): Buffer[] {
  const pad = (512 - (data.length % 512)) % 512;
  return pad ? [data, Buffer.alloc(pad)] : [data];
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = body.length + 1;
  while (`${length}${body}`.length !== length) length = `${length}${body}`.length;
  return `${length}${body}`;
}

/** Builds a tar archive; paths longer than 100 bytes get a pax `path` record, as GNU tar and Go's writer do. */
export function buildTar(entries: TarSpec[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const kind = entry.kind ?? 'file';
    const content = kind === 'file' ? Buffer.from(entry.content ?? '') : Buffer.alloc(0);
    const name = kind === 'directory' && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path;
    if (Buffer.byteLength(name) > 100) {
      const pax = Buffer.from(paxRecord('path', name));
      parts.push(headerBlock({ name: 'PaxHeaders/long', mode: 0o644, size: pax.length, typeflag: 'x' }), ...padded(pax));
    }
    const typeflag = kind === 'directory' ? '5' : kind === 'symlink' ? '2' : '0';
    const mode = entry.mode ?? (kind === 'directory' ? 0o755 : kind === 'symlink' ? 0o777 : 0o644);
    parts.push(headerBlock({ name: name.slice(0, 100), mode, size: content.length, typeflag, linkname: entry.linkTarget }));
    if (content.length > 0) parts.push(...padded(content));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A gzipped tar layer as a blob. */
export function gzipLayer(entries: TarSpec[]): TestBlob {
  return makeBlob(gzipSync(buildTar(entries)));
}

/** A zstd-compressed tar layer as a blob. */
export function zstdLayer(entries: TarSpec[]): TestBlob {
  return makeBlob(zstdCompressSync(buildTar(entries)));
}

/** A dpkg status file with the given installed packages, plus one removed package that must not be counted. */
export function dpkgStatus(packages: string[]): string {
  const installed = packages.map((name) => `Package: ${name}\nStatus: install ok installed\nVersion: 1.0-1\nDescription: ${name}\n test package\n`);
  return [...installed, 'Package: removed-thing\nStatus: deinstall ok config-files\nVersion: 0.1\n'].join('\n');
}

/** An image with known contents, and what its report must say. */
export interface KnownImage {
  config: TestBlob;
  layers: TestBlob[];
  manifest: TestManifest;
  blobs: TestBlob[];
  expected: {
    files: number;
    setuid: string[];
    worldWritable: string[];
    dpkgPackages: number;
    apkPackages: number;
    secretLikeEnv: string[];
    exposedPorts: string[];
  };
}

/**
 * Builds the tests' image: a gzip base layer (dpkg, a setuid binary, /tmp) and a zstd app layer (apk db, a writable
 * file).
 */
export function knownImage(seed = `${Date.now()}-${Math.random()}`): KnownImage {
  const dpkgPackages = ['base-files', 'libc6', 'bash', 'coreutils', 'openssl'];
  const base = gzipLayer([
    { path: 'bin', kind: 'directory' },
    { path: 'bin/bash', content: 'ELF-ish bash', mode: 0o755 },
    { path: 'bin/su', content: 'ELF-ish su', mode: 0o4755 },
    { path: 'bin/sh', kind: 'symlink', linkTarget: 'bash' },
    { path: 'tmp', kind: 'directory', mode: 0o1777 },
    { path: 'var/lib/dpkg', kind: 'directory' },
    { path: 'var/lib/dpkg/status', content: dpkgStatus(dpkgPackages) },
    { path: `etc/seed-${seed}`, content: seed },
  ]);
  const app = zstdLayer([
    { path: 'lib/apk/db/installed', content: 'C:Q1abc=\nP:musl\nV:1.2\n\nC:Q1def=\nP:busybox\nV:1.36\n\n' },
    { path: 'srv/app/data.log', content: 'x'.repeat(1000), mode: 0o666 },
    { path: `srv/app/${'deep/'.repeat(25)}file.txt`, content: 'long path' },
  ]);
  const config = makeBlob(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { User: '', Env: ['PATH=/usr/bin', 'DB_PASSWORD=hunter2', 'API_TOKEN_FILE=/run/secrets/token', 'EMPTY_SECRET='], ExposedPorts: { '8080/tcp': {} } },
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  );
  const layerTypes = ['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd'];
  const manifest = imageManifest(config, [base, app], {
    layers: [base, app].map((layer, i) => ({ mediaType: layerTypes[i], digest: layer.digest, size: layer.size })),
  });
  return {
    config,
    layers: [base, app],
    manifest,
    blobs: [config, base, app],
    expected: {
      files: 4 + 3,
      setuid: ['/bin/su'],
      worldWritable: ['/srv/app/data.log'],
      dpkgPackages: dpkgPackages.length,
      apkPackages: 2,
      secretLikeEnv: ['DB_PASSWORD'],
      exposedPorts: ['8080/tcp'],
    },
  };
}
