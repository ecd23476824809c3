/**
 * The benchmark's HTTP client as its own process, so that the load it generates never shares a process with a server
 * or with the runner: `node --import tsx tools/bench/client-worker.ts '<job JSON>'` prints one JSON result line.
 * Jobs: blob downloads, monolithic blob pushes from a file, whole-image pulls and pushes at a concurrency, pushes
 * of a generated blob (monolithic or chunked) for the memory check, and the pull-through cache's cold pulls: one
 * blob by many clients at once, and one whole image.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { type RegistryClient, createRegistryClient, expectAnswer } from '@lading/client';
import { GeneratedBlob, makeImage, BLOCK_BYTES } from './content';
import { percentile } from './report';

/** A job for the worker. */
export type WorkerJob =
  | { kind: 'download'; base: string; repo: string; digest: string; count: number; concurrency: number; client?: 'lean' | 'registry' }
  | { kind: 'push-blob'; base: string; repo: string; file: string; digest: string; size: number; fresh?: boolean }
  | { kind: 'image-pull'; base: string; repo: string; tag: string; seconds: number; concurrency: number }
  | { kind: 'image-push'; base: string; repo: string; seconds: number; concurrency: number; layerBytes: number }
  | { kind: 'generated-push'; base: string; repo: string; size: number; chunkBytes?: number }
  | { kind: 'cold-download'; base: string; repo: string; digest: string; size: number; concurrency: number }
  | { kind: 'image-pull-once'; base: string; repo: string; tag: string };

/** What a job measured: bytes and operations over seconds, and per-operation latencies' p99 when it has them. */
export interface WorkerResult {
  seconds: number;
  bytes: number;
  operations: number;
  p99Ms?: number;
  note?: string;
  /** The client's own CPU time (user + system, ms) over the measured part, where the job reads it. */
  clientCpuMs?: number;
}

/** CPU milliseconds (user + system) this process has used. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** The one buffer every lean download reads into: the kernel copies each socket read into it, nothing is allocated. */
const LEAN_READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

/**
 * One GET of `url` on a connection of its own (HTTP/1.1, no TLS, no auth), counting the body's bytes as they are read
 * into one reused buffer: a client that costs next to nothing per byte, so that a download measures the server and
 * not the client (the registry client allocates, and hands on, a Buffer per socket read). Redirects are followed.
 * Resolves with the body's length; throws on any other status than 200 or a body shorter than its Content-Length.
 */
function leanGet(url: string, redirectsLeft = 5): Promise<number> {
  const target = new URL(url);
  return new Promise<number>((resolve, reject) => {
    let head = '';
    let headDone = false;
    let length = -1;
    let bytes = 0;
    let settled = false;
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      outcome();
    };
    const socket = connect({
      host: target.hostname,
      port: Number(target.port || 80),
      onread: {
        buffer: LEAN_READ_BUFFER,
        callback: (read: number, buffer: Uint8Array) => {
          if (settled) return false;
          let body = read;
          if (!headDone) {
            head += Buffer.from(buffer.buffer, buffer.byteOffset, read).toString('latin1');
            const end = head.indexOf('\r\n\r\n');
            if (end < 0) return true;
            headDone = true;
            body = head.length - (end + 4);
            const lines = head.slice(0, end).split('\r\n');
            const status = Number(lines[0].split(' ')[1]);
            const header = (name: string) => lines.find((l) => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
            const location = header('location');
            if (REDIRECT_STATUSES.has(status) && location && redirectsLeft > 0) {
              finish(() => leanGet(new URL(location, target).href, redirectsLeft - 1).then(resolve, reject));
              return false;
            }
            if (status !== 200) {
              finish(() => reject(new Error(`GET ${target.pathname} answered ${status}`)));
              return false;
            }
            length = Number(header('content-length') ?? -1);
            if (!(length >= 0)) {
              finish(() => reject(new Error(`GET ${target.pathname}: no Content-Length`)));
              return false;
            }
          }
          bytes += body;
          if (bytes >= length) finish(() => resolve(bytes));
          return true;
        },
      },
    });
    socket.once('connect', () => socket.write(`GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: close\r\n\r\n`));
    socket.once('error', (err) => finish(() => reject(err)));
    socket.once('close', () => finish(() => reject(new Error(`GET ${target.pathname}: connection closed after ${bytes} of ${length} bytes`))));
  });
}

/** Downloads a blob to nowhere and counts its bytes; with `verify`, the client checks the digest as they pass. */
async function downloadBlob(client: RegistryClient, repo: string, digest: string, verify = false): Promise<{ bytes: number }> {
  let bytes = 0;
  for await (const chunk of await client.openBlob(repo, digest, verify)) bytes += chunk.length;
  return { bytes };
}

async function download(client: RegistryClient, job: Extract<WorkerJob, { kind: 'download' }>): Promise<WorkerResult> {
  // One download through the registry client, verified by digest first (not timed), then `count` timed downloads,
  // `concurrency` at a time, through the lean client (the same for every registry; see leanGet) unless the job asks for
  // the registry client.
  const verified = await downloadBlob(client, job.repo, job.digest, true);
  const url = `${job.base.replace(/\/$/, '')}/v2/${job.repo}/blobs/${job.digest}`;
  let next = 0;
  let bytes = 0;
  const cpuBefore = cpuMs();
  const started = performance.now();
  await Promise.all(Array.from({ length: job.concurrency }, async () => {
    while (next < job.count) {
      next++;
      const got = job.client === 'registry' ? (await downloadBlob(client, job.repo, job.digest)).bytes : await leanGet(url);
      bytes += got;
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  const clientCpuMs = cpuMs() - cpuBefore;
  if (bytes !== job.count * verified.bytes) throw new Error(`read ${bytes} bytes, expected ${job.count} x ${verified.bytes}`);
  return { seconds, bytes, operations: job.count, clientCpuMs, note: `${job.count} downloads, ${job.concurrency} at a time, digest verified` };
}

/** Bytes of the file replaced by random ones when a push must store a blob never stored before. */
const FRESH_HEAD_BYTES = 32;

/** Bytes read from the file per write of a lean push; two such buffers take turns. */
const LEAN_PUSH_CHUNK = 1 << 20;

/**
 * The PUT that finishes an upload, sent by hand on a connection of its own (HTTP/1.1, no TLS, no auth): `head` (when
 * given) in place of the file's first bytes, then the file up to `size`, read into two reused buffers that take turns
 * (the next read runs while the previous chunk is written). Like leanGet, a client that costs little per byte, so
 * that a push measures the server. Resolves with the answer's status once its head arrived.
 */
async function leanPut(url: string, file: string, size: number, head: Buffer | undefined): Promise<number> {
  const target = new URL(url);
  const handle = await open(file, 'r');
  const socket = connect({ host: target.hostname, port: Number(target.port || 80) });
  try {
    let answer = '';
    const status = new Promise<number>((resolve, reject) => {
      socket.on('data', (data: Buffer) => {
        answer += data.toString('latin1');
        if (answer.includes('\r\n\r\n')) resolve(Number(answer.split(' ')[1]));
      });
      socket.once('error', reject);
      socket.once('close', () => reject(new Error(`PUT ${target.pathname}: connection closed before an answer`)));
    });
    status.catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const write = (chunk: Buffer) => new Promise<void>((resolve, reject) => socket.write(chunk, (err) => (err ? reject(err) : resolve())));
    await write(Buffer.from(`PUT ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`, 'latin1'));
    let position = 0;
    let writing: Promise<void> = Promise.resolve();
    if (head) {
      writing = write(head);
      position = head.length;
    }
    const buffers = [Buffer.allocUnsafe(LEAN_PUSH_CHUNK), Buffer.allocUnsafe(LEAN_PUSH_CHUNK)];
    for (let turn = 0; position < size; turn ^= 1) {
      const buffer = buffers[turn];
      // This buffer's last write was awaited before the other buffer's write began.
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - position), position);
      if (bytesRead === 0) throw new Error(`${file} ended at ${position} of ${size} bytes`);
      await writing;
      writing = write(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
      position += bytesRead;
    }
    await writing;
    return await status;
  } finally {
    socket.destroy();
    await handle.close();
  }
}

/**
 * Pushes the file as one blob: POST (through fetch), then one PUT carrying it (leanPut), the same for every registry.
 * With `fresh`, its first bytes are replaced by random ones, so the blob is new to the registry and the push pays for
 * storing it (a registry skips the commit of a blob it holds); the digest of that variant is computed before the
 * clock starts.
 */
async function pushBlob(job: Extract<WorkerJob, { kind: 'push-blob' }>): Promise<WorkerResult> {
  let digest = job.digest;
  let head: Buffer | undefined;
  if (job.fresh) {
    head = randomBytes(FRESH_HEAD_BYTES);
    const hash = createHash('sha256').update(head);
    for await (const chunk of createReadStream(job.file, { start: FRESH_HEAD_BYTES, highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
    digest = `sha256:${hash.digest('hex')}`;
  }
  const base = job.base.replace(/\/$/, '');
  const cpuBefore = cpuMs();
  const started = performance.now();
  const posted = await fetch(`${base}/v2/${job.repo}/blobs/uploads/`, { method: 'POST' });
  await posted.arrayBuffer();
  const location = posted.headers.get('location');
  if (posted.status !== 202 || !location) throw new Error(`POST blob upload answered ${posted.status}`);
  const url = new URL(location, `${base}/`);
  url.searchParams.set('digest', digest);
  const status = await leanPut(url.href, job.file, job.size, head);
  if (status !== 201) throw new Error(`PUT blob ${digest} answered ${status}`);
  return { seconds: (performance.now() - started) / 1000, bytes: job.size, operations: 1, clientCpuMs: cpuMs() - cpuBefore };
}

/** Runs `operation` on `concurrency` loops until `seconds` have passed; counts operations and their latencies. */
async function forDuration(seconds: number, concurrency: number, operation: (loop: number, i: number) => Promise<number>): Promise<WorkerResult> {
  const latencies: number[] = [];
  let bytes = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async (_, loop) => {
    for (let i = 0; performance.now() < deadline; i++) {
      const t0 = performance.now();
      const moved = await operation(loop, i);
      bytes += moved;
      latencies.push(performance.now() - t0);
    }
  }));
  return { seconds: (performance.now() - started) / 1000, bytes, operations: latencies.length, p99Ms: percentile(latencies, 99) };
}

/** Pulls an image as a client does: the manifest by tag, then its config and layers one after another; returns the bytes of the blobs. */
async function pullImage(client: RegistryClient, repo: string, tag: string): Promise<number> {
  const manifest = JSON.parse((await client.readManifest(repo, tag)).bytes.toString('utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  const blobs = [manifest.config.digest, ...manifest.layers.map((l) => l.digest)];
  let bytes = 0;
  for (const digest of blobs) bytes += (await downloadBlob(client, repo, digest)).bytes;
  return bytes;
}

async function imagePull(client: RegistryClient, job: Extract<WorkerJob, { kind: 'image-pull' }>): Promise<WorkerResult> {
  const result = await forDuration(job.seconds, job.concurrency, () => pullImage(client, job.repo, job.tag));
  return { ...result, note: `${job.concurrency} clients in one process: manifest by tag, then config + layers` };
}

/** One image pull, timed: through a pull-through cache that misses it, the first pull of it. */
async function imagePullOnce(client: RegistryClient, job: Extract<WorkerJob, { kind: 'image-pull-once' }>): Promise<WorkerResult> {
  const started = performance.now();
  const bytes = await pullImage(client, job.repo, job.tag);
  return { seconds: (performance.now() - started) / 1000, bytes, operations: 1 };
}

/**
 * `concurrency` downloads of one blob started at once, timed from the start to the last byte of the last one; each
 * must bring `size` bytes. Nothing is downloaded before (through a pull-through cache that misses the blob, these
 * are its first pulls), and the client does not hash: the cache verifies the digest before the last chunk leaves.
 * `p99Ms` is the slowest download.
 */
async function coldDownload(client: RegistryClient, job: Extract<WorkerJob, { kind: 'cold-download' }>): Promise<WorkerResult> {
  const started = performance.now();
  const latencies = await Promise.all(Array.from({ length: job.concurrency }, async () => {
    const { bytes } = await downloadBlob(client, job.repo, job.digest);
    if (bytes !== job.size) throw new Error(`read ${bytes} bytes of ${job.digest}, expected ${job.size}`);
    return performance.now() - started;
  }));
  return { seconds: (performance.now() - started) / 1000, bytes: job.size * job.concurrency, operations: job.concurrency, p99Ms: Math.max(...latencies) };
}

async function imagePush(client: RegistryClient, job: Extract<WorkerJob, { kind: 'image-push' }>): Promise<WorkerResult> {
  const result = await forDuration(job.seconds, job.concurrency, async (loop, i) => {
    const image = makeImage(job.layerBytes);
    for (const blob of [image.config, ...image.layers]) await client.pushBlobStream(job.repo, blob.digest, blob.size, blob.data);
    expectAnswer(await client.putManifest(job.repo, `c${loop}-${i}`, image.manifest), 201, `PUT manifest ${job.repo}:c${loop}-${i}`);
    return image.layers.reduce((sum, l) => sum + l.size, image.config.size);
  });
  return { ...result, note: `${job.concurrency} clients in one process, new random layers every push` };
}

async function generatedPush(client: RegistryClient, job: Extract<WorkerJob, { kind: 'generated-push' }>): Promise<WorkerResult> {
  const blob = new GeneratedBlob(job.size);
  const digest = await blob.digest();
  const cpuBefore = cpuMs();
  const started = performance.now();
  const chunkBytes = job.chunkBytes;
  if (chunkBytes === undefined) {
    await client.pushBlobStream(job.repo, digest, job.size, () => Readable.from(blob.blocks()));
  } else {
    if (chunkBytes % BLOCK_BYTES !== 0) throw new Error(`chunkBytes must be a multiple of ${BLOCK_BYTES}`);
    const step = chunkBytes;
    async function* chunks() {
      for (let start = 0; start < job.size; start += step) {
        const end = Math.min(job.size, start + step);
        yield { start, length: end - start, body: Readable.from(blob.blocks(start, end)) };
      }
    }
    await client.pushBlobChunks(job.repo, digest, chunks());
  }
  return { seconds: (performance.now() - started) / 1000, bytes: job.size, operations: 1, clientCpuMs: cpuMs() - cpuBefore };
}

async function runJob(job: WorkerJob): Promise<WorkerResult> {
  const client = createRegistryClient({ url: job.base, connections: 'concurrency' in job ? job.concurrency + 2 : 4, timeoutMs: 600_000 });
  try {
    switch (job.kind) {
      case 'download': return await download(client, job);
      case 'push-blob': return await pushBlob(job);
      case 'image-pull': return await imagePull(client, job);
      case 'image-push': return await imagePush(client, job);
      case 'generated-push': return await generatedPush(client, job);
      case 'cold-download': return await coldDownload(client, job);
      case 'image-pull-once': return await imagePullOnce(client, job);
    }
  } finally {
    await client.close();
  }
}

runJob(JSON.parse(process.argv[2] ?? '{}') as WorkerJob).then(
  (result) => { process.stdout.write(`${JSON.stringify({ ok: true, result })}\n`); },
  (error: unknown) => {
    process.stdout.write(`${JSON.stringify({ ok: false, error: error instanceof Error ? error.message : String(error) })}\n`);
    process.exitCode = 1;
  },
);
