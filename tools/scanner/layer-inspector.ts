/**
 * Inspects one image layer as it streams past: decompresses it (gzip, zstd, or plain tar), reads every tar header, and
 * notes what a platform team wants to know about a layer: how many files and bytes, setuid/setgid and
 * world-writable files, and which package databases it carries with how many packages they list. File contents are
 * never held; only a package database's lines pass through a line counter.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { ContentSink, TarEntry, TarHeaderReader } from './tar-header-reader';

/** Longest list of paths kept per finding and layer; the counts stay exact. */
export const MAX_LISTED_PATHS = 50;

/** A package database found in a layer. */
export interface PackageDatabase {
  /** `/var/lib/dpkg/status`, `/lib/apk/db/installed`, ... */
  path: string;
  manager: 'dpkg' | 'apk' | 'rpm';
  /** Installed packages it lists; null when this scanner cannot count them (rpm's binary databases). */
  packages: number | null;
}

/** Paths with a finding, capped at MAX_LISTED_PATHS, with the exact count. */
export interface PathList {
  count: number;
  paths: string[];
}

/** What one layer holds. */
export interface LayerFindings {
  files: number;
  directories: number;
  symlinks: number;
  /** Sum of the sizes of the regular files. */
  totalFileBytes: number;
  setuid: PathList;
  setgid: PathList;
  /** Files and directories anyone may write (symlinks, and directories with the sticky bit such as /tmp, excepted). */
  worldWritable: PathList;
  packageDatabases: PackageDatabase[];
  /** Paths this layer deletes from the layers below (`.wh.` whiteout files). */
  whiteouts: PathList;
}

/** A line counter for a package database: fed its content in slices, it returns the package count at the end. */
interface PackageCounter {
  line(text: string): void;
  finish(): number;
}

/** dpkg's status file: one paragraph per package; count those whose Status says installed. */
function dpkgStatusCounter(): PackageCounter {
  let count = 0;
  let hasPackage = false;
  let installed = false;
  const closeParagraph = () => {
    if (hasPackage && installed) count++;
    hasPackage = false;
    installed = false;
  };
  return {
    line(text) {
      if (text.trim() === '') closeParagraph();
      else if (text.startsWith('Package:')) hasPackage = true;
      else if (text.startsWith('Status:')) installed = / installed\s*$/.test(text);
    },
    finish() {
      closeParagraph();
      return count;
    },
  };
}

/** apk's installed database: one `P:` line (the package name) per package. */
function apkInstalledCounter(): PackageCounter {
  let count = 0;
  return {
    line(text) {
      if (text.startsWith('P:')) count++;
    },
    finish: () => count,
  };
}

/** The package databases this scanner recognises, by path inside the image. */
const PACKAGE_DATABASES: Record<string, { manager: PackageDatabase['manager']; counter?: () => PackageCounter }> = {
  'var/lib/dpkg/status': { manager: 'dpkg', counter: dpkgStatusCounter },
  'lib/apk/db/installed': { manager: 'apk', counter: apkInstalledCounter },
  'var/lib/rpm/Packages': { manager: 'rpm' },
  'var/lib/rpm/rpmdb.sqlite': { manager: 'rpm' },
  'usr/lib/sysimage/rpm/rpmdb.sqlite': { manager: 'rpm' },
};

/** Distroless images list each dpkg package as one file in this directory instead of one status file. */
const DPKG_STATUS_DIR = 'var/lib/dpkg/status.d/';

/** Splits slices of text into lines for a counter; a line longer than 64 KiB is cut (no database needs more). */
function lineSink(counter: PackageCounter): { sink: ContentSink; close(): number } {
  let tail = '';
  return {
    sink(slice) {
      const text = tail + slice.toString('utf8');
      const lines = text.split('\n');
      tail = (lines.pop() ?? '').slice(0, 64 * 1024);
      for (const line of lines) counter.line(line);
    },
    close() {
      if (tail) counter.line(tail);
      return counter.finish();
    },
  };
}

function pathList(): PathList {
  return { count: 0, paths: [] };
}

function note(list: PathList, path: string): void {
  list.count++;
  if (list.paths.length < MAX_LISTED_PATHS) list.paths.push(path);
}

/**
 * How a layer's bytes are compressed, from its first bytes (media types are not always right). A zstd stream starts
 * with a frame (magic 0xFD2FB528) or a skippable frame (0x184D2A50 to 0x184D2A5F, which zstd:chunked layers carry).
 */
export function detectCompression(head: Buffer): 'gzip' | 'zstd' | 'none' {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && (head.readUInt32LE(0) === 0xfd2fb528 || (head.readUInt32LE(0) & 0xfffffff0) === 0x184d2a50)) return 'zstd';
  return 'none';
}

/** A layer this scanner cannot read (a corrupt or truncated archive, a compression it does not know). */
export class LayerUnreadableError extends Error {}

/** An error of the source (the network, a digest mismatch): not the layer's fault, so it is passed on as it is. */
class SourceFailure extends Error {
  constructor(readonly original: unknown) {
    super('the layer source failed');
  }
}

/** Collects the findings of one layer from its tar entries. */
function findingsCollector(): { onEntry(entry: TarEntry): ContentSink | void; finish(): LayerFindings } {
  const findings: LayerFindings = {
    files: 0,
    directories: 0,
    symlinks: 0,
    totalFileBytes: 0,
    setuid: pathList(),
    setgid: pathList(),
    worldWritable: pathList(),
    packageDatabases: [],
    whiteouts: pathList(),
  };
  const openCounters: Array<{ database: PackageDatabase; close(): number }> = [];
  let distrolessPackages = 0;
  return {
    onEntry(entry) {
      const shown = `/${entry.path}`;
      const base = entry.path.slice(entry.path.lastIndexOf('/') + 1);
      if (base.startsWith('.wh.')) {
        note(findings.whiteouts, `/${entry.path.slice(0, entry.path.length - base.length)}${base.slice(4)}`);
        return;
      }
      if (entry.kind === 'directory') findings.directories++;
      else if (entry.kind === 'symlink') findings.symlinks++;
      else if (entry.kind === 'file' || entry.kind === 'hardlink') findings.files++;
      if (entry.kind === 'file') findings.totalFileBytes += entry.size;
      if (entry.kind === 'symlink') return;
      if (entry.kind === 'file' || entry.kind === 'hardlink') {
        if (entry.mode & 0o4000) note(findings.setuid, shown);
        if (entry.mode & 0o2000) note(findings.setgid, shown);
      }
      const sticky = entry.kind === 'directory' && entry.mode & 0o1000;
      if (entry.mode & 0o002 && !sticky) note(findings.worldWritable, shown);
      if (entry.kind === 'file' && entry.path.startsWith(DPKG_STATUS_DIR) && !base.endsWith('.md5sums')) distrolessPackages++;
      const known = PACKAGE_DATABASES[entry.path];
      if (!known || entry.kind !== 'file') return;
      const database: PackageDatabase = { path: shown, manager: known.manager, packages: null };
      findings.packageDatabases.push(database);
      if (!known.counter) return;
      const lines = lineSink(known.counter());
      openCounters.push({ database, close: lines.close });
      return lines.sink;
    },
    finish() {
      for (const counter of openCounters) counter.database.packages = counter.close();
      if (distrolessPackages > 0) findings.packageDatabases.push({ path: `/${DPKG_STATUS_DIR}`, manager: 'dpkg', packages: distrolessPackages });
      return findings;
    },
  };
}

/**
 * Inspects a layer from its (compressed or plain) bytes, streamed: the source is consumed once and never held whole.
 * Throws LayerUnreadableError when the bytes are not a readable tar archive.
 */
export async function inspectLayer(source: AsyncIterable<Buffer>): Promise<LayerFindings> {
  const iterator = source[Symbol.asyncIterator]();
  // Enough bytes to tell the compression by its magic number (4 bytes), however small the first chunks are.
  const heads: Buffer[] = [];
  for (let length = 0; length < 4; ) {
    const next = await iterator.next();
    if (next.done) break;
    heads.push(next.value);
    length += next.value.length;
  }
  const head = heads.length === 1 ? heads[0] : Buffer.concat(heads);
  const replay = Readable.from(
    (async function* () {
      if (head.length > 0) yield head;
      for (;;) {
        let next: IteratorResult<Buffer>;
        try {
          next = await iterator.next();
        } catch (err) {
          throw new SourceFailure(err);
        }
        if (next.done) return;
        yield next.value;
      }
    })(),
  );
  const collector = findingsCollector();
  const reader = new TarHeaderReader((entry) => collector.onEntry(entry));
  const consume = async (decoded: AsyncIterable<Buffer>) => {
    for await (const chunk of decoded) reader.write(chunk);
  };
  const compression = detectCompression(head);
  try {
    if (compression === 'gzip') await pipeline(replay, zlib.createGunzip(), consume);
    else if (compression === 'zstd') await pipeline(replay, zlib.createZstdDecompress(), consume);
    else await pipeline(replay, consume);
    reader.end();
  } catch (err) {
    if (err instanceof SourceFailure) throw err.original;
    if (err instanceof LayerUnreadableError) throw err;
    throw new LayerUnreadableError(`the layer is not a readable ${compression === 'none' ? '' : `${compression} `}tar archive: ${(err as Error).message}`);
  }
  return collector.finish();
}
