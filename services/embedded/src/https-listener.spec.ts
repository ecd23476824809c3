/**
 * The embedded registry over HTTPS, as a real process (services/embedded/src/main.ts): with `http.tls.*` it serves
 * `/v2/` over TLS to a client that trusts the test CA; a certificate without its key is a configuration error naming
 * the missing key, and a TLS file that cannot be read or is bad stops the start with one line naming the file, no
 * stack, before anything is opened.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TestCa, TestCertificate, createTestCa, freePort } from '@lading/testing';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');


/** Starts the embedded registry on `port` with `env` on top of a quiet, collector-free base. */
function start(dir: string, port: number, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services/embedded/src/main.ts')], {
    cwd: REPO_ROOT,
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('LADING_'))),
      NODE_OPTIONS: '',
      LADING_DATA_DIR: path.join(dir, 'data'),
      LADING_HTTP_ADDR: `127.0.0.1:${port}`,
      LADING_TELEMETRY_METRICSADDR: 'off',
      LADING_LOG_LEVEL: 'warn',
      LADING_LOG_ACCESS: 'false',
      LADING_GC_ENABLED: 'false',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

/** The status of `GET /v2/` over HTTPS verified against `ca`, or the error code of a failed attempt. */
function v2Status(port: number, ca: Buffer): Promise<number | string> {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/v2/', ca, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('the embedded registry over HTTPS (a real process)', () => {
  let ca: TestCa;
  let cert: TestCertificate;
  let dir: string;
  beforeAll(() => {
    ca = createTestCa();
    cert = ca.issue('registry.lading.test');
  });
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'lading-https-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  afterAll(() => ca.remove());

  it('serves /v2/ over HTTPS to a client that trusts the CA', async () => {
    const port = await freePort();
    const registry = start(dir, port, { LADING_HTTP_TLS_CERTIFICATE: cert.certFile, LADING_HTTP_TLS_KEY: cert.keyFile });
    try {
      let status: number | string = 'not started';
      while (status !== 200 && registry.child.exitCode === null) {
        status = await v2Status(port, ca.cert);
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(status).toBe(200);
    } finally {
      registry.child.kill('SIGTERM');
      await registry.exited;
    }
  }, 180_000);

  it('refuses a certificate without its key, naming http.tls.key, before opening anything', async () => {
    const registry = start(dir, await freePort(), { LADING_HTTP_TLS_CERTIFICATE: cert.certFile });
    expect(await registry.exited).toBe(2);
    expect(registry.stderr()).toBe('lading: invalid configuration at http.tls.key: http.tls.certificate and http.tls.key go together (environment variable LADING_HTTP_TLS_KEY)\n');
    expect(existsSync(path.join(dir, 'data'))).toBe(false);
  });

  it('stops with one line naming a certificate file that cannot be read, before opening anything', async () => {
    const missing = path.join(dir, 'missing.crt');
    const registry = start(dir, await freePort(), { LADING_HTTP_TLS_CERTIFICATE: missing, LADING_HTTP_TLS_KEY: cert.keyFile });
    expect(await registry.exited).toBe(1);
    expect(registry.stderr()).toBe(`lading-registry: failed to start: cannot read ${missing} (http.tls.certificate): ENOENT\n`);
    expect(registry.stdout()).not.toMatch(/\n\s+at /);
    expect(existsSync(path.join(dir, 'data'))).toBe(false);
  });

  it('stops with one line naming a key file that is not the certificate\'s key', async () => {
    const other = path.join(dir, 'other.key');
    writeFileSync(other, ca.key);
    const registry = start(dir, await freePort(), { LADING_HTTP_TLS_CERTIFICATE: cert.certFile, LADING_HTTP_TLS_KEY: other });
    expect(await registry.exited).toBe(1);
    expect(registry.stderr()).toBe(`lading-registry: failed to start: ${other} (http.tls.key) is not the private key of the certificate in ${cert.certFile}\n`);
    expect(registry.stdout()).not.toMatch(/\n\s+at /);
  });
});
