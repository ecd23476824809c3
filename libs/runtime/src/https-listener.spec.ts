/**
 * The HTTPS listener (`http.tls.*`), on real sockets on 127.0.0.1 with a throwaway CA: the server factory serves
 * HTTPS with the answers and limits of plain HTTP, refuses plain HTTP on the port, and serves a renewed certificate to
 * new connections without a restart (files rewritten in place, or swapped the way Kubernetes updates a mounted
 * secret), while a bad renewal is logged and the certificate in use is kept.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https, { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { parseConfig } from '@lading/config';
import { createLogger } from '@lading/telemetry';
import { TestCa, TestCertificate, createTestCa } from '@lading/testing';
import { createHttpServer } from './serve';
import { TlsFiles, TlsFilesError, TlsWatcher, readTlsPair, watchTlsFiles } from './tls-credentials';

const limits = parseConfig({}).limits;

/** Answers `/v2/` as a registry does, and 404 elsewhere. */
const app: http.RequestListener = (req, res) => {
  const found = req.url === '/v2/';
  res.writeHead(found ? 200 : 404, { 'Content-Type': 'application/json', 'Docker-Distribution-API-Version': 'registry/2.0' });
  res.end(found ? '{}' : '{"errors":[]}');
};

/** What a TLS client verifying against `ca` is served on a new connection: the certificate's common name. */
function servedName(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca }, () => {
      const name = socket.getPeerCertificate().subject.CN;
      socket.end();
      resolve(String(name));
    });
    socket.on('error', reject);
  });
}

/** A GET over HTTPS on a new connection, verified against `ca`. */
function httpsGet(port: number, ca: Buffer, urlPath: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, ca, path: urlPath, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

/** Polls `read` until it returns `expected` (the test's timeout is the guard); resolves with the last value read. */
async function until<T>(read: () => Promise<T>, expected: T): Promise<T> {
  for (;;) {
    const value = await read();
    if (value === expected) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Lines a logger wrote, parsed. */
function logSink(): { lines: Array<Record<string, unknown>>; write(line: string): void } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) };
}

describe('the HTTPS listener', () => {
  let ca: TestCa;
  let first: TestCertificate;
  let second: TestCertificate;
  let dir: string;
  let files: TlsFiles;
  let server: HttpsServer;
  let watcher: TlsWatcher | undefined;
  let port: number;
  let log: ReturnType<typeof logSink>;

  beforeAll(() => {
    ca = createTestCa();
    first = ca.issue('first.lading.test');
    second = ca.issue('second.lading.test');
  });
  afterAll(() => ca.remove());

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'lading-tls-'));
    files = { certificate: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') };
    writeFileSync(files.certificate, first.cert);
    writeFileSync(files.key, first.key);
    server = createHttpServer(app, limits, readTlsPair(files));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    log = logSink();
  });

  afterEach(async () => {
    await watcher?.stop();
    watcher = undefined;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  function watch(): TlsWatcher {
    watcher = watchTlsFiles(server, files, readTlsPair(files), createLogger({ service: 'test', level: 'info', destination: log }), { settleMs: 20 });
    return watcher;
  }

  it('answers /v2/ over HTTPS to a client that verifies the certificate against the CA', async () => {
    const res = await httpsGet(port, ca.cert, '/v2/');
    expect([res.status, res.headers['docker-distribution-api-version'], res.body]).toEqual([200, 'registry/2.0', '{}']);
  });

  it('answers a request head over the limit with 431 in the OCI envelope, as plain HTTP does', async () => {
    const res = await httpsGet(port, ca.cert, '/v2/', { 'x-padding': 'x'.repeat(limits.maxHeaderBytes) });
    expect(res.status).toBe(431);
    expect(JSON.parse(res.body)).toEqual({ errors: [expect.objectContaining({ code: expect.any(String) })] });
  });

  it('refuses plain HTTP on the port', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/v2/', agent: false }, (res) => resolve(`answered ${res.statusCode}`));
      req.on('error', (err: NodeJS.ErrnoException) => resolve(`failed ${err.code}`));
    });
    expect(outcome).toMatch(/^failed /);
  });

  it('refuses a client that does not trust the CA', async () => {
    const stranger = createTestCa();
    try {
      await expect(servedName(port, stranger.cert)).rejects.toThrow(/unable to verify/);
    } finally {
      stranger.remove();
    }
  });

  it('serves certificate and key files rewritten in place to new connections, without a restart', async () => {
    watch();
    expect(await servedName(port, ca.cert)).toBe('first.lading.test');
    writeFileSync(files.certificate, second.cert);
    writeFileSync(files.key, second.key);
    expect(await until(() => servedName(port, ca.cert), 'second.lading.test')).toBe('second.lading.test');
    expect(log.lines).toContainEqual(expect.objectContaining({ msg: 'serving the renewed TLS certificate', subject: 'CN=second.lading.test' }));
  });

  it('follows a Kubernetes secret update: the ..data symlink swapped to a new directory', async () => {
    // A mounted secret: tls.crt -> ..data/tls.crt, ..data -> a timestamped directory; an update writes a new
    // directory, points ..data_tmp at it and renames ..data_tmp over ..data.
    const mount = path.join(dir, 'secret');
    const version = (name: string, cert: TestCertificate) => {
      mkdirSync(path.join(mount, name), { recursive: true });
      writeFileSync(path.join(mount, name, 'tls.crt'), cert.cert);
      writeFileSync(path.join(mount, name, 'tls.key'), cert.key);
      symlinkSync(name, path.join(mount, '..data_tmp'));
      renameSync(path.join(mount, '..data_tmp'), path.join(mount, '..data'));
    };
    version('..2026_01', first);
    symlinkSync('..data/tls.crt', path.join(mount, 'tls.crt'));
    symlinkSync('..data/tls.key', path.join(mount, 'tls.key'));
    files = { certificate: path.join(mount, 'tls.crt'), key: path.join(mount, 'tls.key') };
    watch();

    version('..2026_02', second);
    expect(await until(() => servedName(port, ca.cert), 'second.lading.test')).toBe('second.lading.test');
  });

  it('keeps serving the certificate in use when the new files are not a usable pair, and logs why', async () => {
    watch();
    // The second certificate with the first one's key: a renewal gone wrong.
    writeFileSync(files.certificate, second.cert);
    await until(async () => log.lines.some((l) => l.msg === 'the TLS files changed but are not a usable pair: serving the previous certificate'), true);
    expect(log.lines.find((l) => l.level === 40)).toMatchObject({ problem: `${files.key} (http.tls.key) is not the private key of the certificate in ${files.certificate}` });
    expect(await servedName(port, ca.cert)).toBe('first.lading.test');

    // Garbage in the certificate file: still the first certificate.
    writeFileSync(files.certificate, 'not a certificate\n');
    await until(async () => log.lines.filter((l) => l.level === 40).length, 2);
    expect(await servedName(port, ca.cert)).toBe('first.lading.test');

    // Fixed: the renewal goes through.
    writeFileSync(files.key, second.key);
    writeFileSync(files.certificate, second.cert);
    expect(await until(() => servedName(port, ca.cert), 'second.lading.test')).toBe('second.lading.test');
  });
});

describe('reading the TLS files at start-up', () => {
  let ca: TestCa;
  let dir: string;
  let cert: TestCertificate;
  beforeAll(() => {
    ca = createTestCa();
    cert = ca.issue('start.lading.test');
    dir = mkdtempSync(path.join(tmpdir(), 'lading-tls-start-'));
  });
  afterAll(() => {
    ca.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  function refusal(files: TlsFiles): string {
    try {
      readTlsPair(files);
    } catch (err) {
      expect(err).toBeInstanceOf(TlsFilesError);
      return (err as Error).message;
    }
    throw new Error('expected a TlsFilesError');
  }

  it('reads a certificate and its key', () => {
    expect(readTlsPair({ certificate: cert.certFile, key: cert.keyFile }).cert.equals(cert.cert)).toBe(true);
  });

  it('names a file that cannot be read, and its key', () => {
    const missing = path.join(dir, 'missing.crt');
    expect(refusal({ certificate: missing, key: cert.keyFile })).toBe(`cannot read ${missing} (http.tls.certificate): ENOENT`);
    expect(refusal({ certificate: cert.certFile, key: dir })).toBe(`cannot read ${dir} (http.tls.key): EISDIR`);
  });

  it('names a certificate file that holds no certificate', () => {
    const bad = path.join(dir, 'bad.crt');
    writeFileSync(bad, 'hello\n');
    expect(refusal({ certificate: bad, key: cert.keyFile })).toMatch(new RegExp(`^${bad} \\(http\\.tls\\.certificate\\) does not hold a PEM certificate`));
  });

  it('names a key file that holds no key, or a key that is the CA\'s and not the certificate\'s', () => {
    expect(refusal({ certificate: cert.certFile, key: cert.certFile })).toMatch(new RegExp(`^${cert.certFile} \\(http\\.tls\\.key\\) does not hold an unencrypted PEM private key`));
    expect(refusal({ certificate: cert.certFile, key: ca.keyFile })).toBe(`${ca.keyFile} (http.tls.key) is not the private key of the certificate in ${cert.certFile}`);
  });
});
