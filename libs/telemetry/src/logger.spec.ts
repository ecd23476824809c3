import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogDestination, createLogger } from './logger';
import { withSpan } from './spans';
import { TestTracing, startTestTracing } from '../test/test-tracing';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      raw.push(chunk.toString('utf8'));
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ service: 'test', level: 'info', destination }), lines, raw };
}

describe('createLogger', () => {
  let tracing: TestTracing;
  beforeAll(() => {
    tracing = startTestTracing();
  });
  afterAll(async () => {
    await tracing.stop();
  });

  it('puts the active span trace_id and span_id on every line inside a span, and none outside', async () => {
    const { logger, lines } = capture();
    logger.info('before');
    await withSpan('outer', {}, async (span) => {
      logger.info('inside');
      await new Promise((resolve) => setTimeout(resolve, 5));
      logger.child({ part: 'x' }).warn('after an await, from a child logger');
      return span;
    });
    logger.info('after');
    const [span] = tracing.spans().filter((s) => s.name === 'outer');
    expect(lines.map((l) => [l.msg, l.trace_id, l.span_id, l.service])).toEqual([
      ['before', undefined, undefined, 'lading-test'],
      ['inside', span.spanContext().traceId, span.spanContext().spanId, 'lading-test'],
      ['after an await, from a child logger', span.spanContext().traceId, span.spanContext().spanId, 'lading-test'],
      ['after', undefined, undefined, 'lading-test'],
    ]);
  });

  it('never writes secrets: auth headers, tokens, passwords, webhook secrets, presigned signatures, URL credentials', () => {
    const { logger, raw, lines } = capture();
    const secrets = ['s3cr3t-bearer-token-value', 'hunter2-password', 'whsec_0123456789abcdef', 'AKIAEXAMPLEKEY', 'deadbeefsignature0123', 'sessioncookie42', 'refresh-abc-123', 'minio-secret-key-9'];
    logger.info(
      {
        req: { method: 'GET', url: '/v2/x/manifests/latest', headers: { authorization: 'Bearer s3cr3t-bearer-token-value', Cookie: 'sid=sessioncookie42', 'user-agent': 'docker' } },
        login: { user: 'alice', password: 'hunter2-password' },
        subscription: { id: 7, url: 'https://hooks.example/x', secret: 'whsec_0123456789abcdef' },
        location: 'http://minio:9000/lading/blobs/sha256/ab/abcd?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLEKEY%2F20260101&X-Amz-Signature=deadbeefsignature0123',
        body: { grant_type: 'refresh_token', refresh_token: 'refresh-abc-123' },
        storage: { endpoint: 'http://127.0.0.1:9000', secretKey: 'minio-secret-key-9' },
      },
      'request',
    );
    logger.warn('redirecting to http://minio:9000/x?X-Amz-Signature=deadbeefsignature0123 with Bearer s3cr3t-bearer-token-value');
    logger.error({ err: new Error('fetch http://alice:hunter2-password@registry.example/v2/ failed') }, 'upstream failed');
    logger.info({ nested: { deeper: { headers: [{ Authorization: 'Basic AKIAEXAMPLEKEY' }] } } }, 'deep');
    const text = raw.join('');
    for (const secret of secrets) expect(text).not.toContain(secret);
    // What is not secret is still there to read.
    expect(lines[0]).toMatchObject({
      req: { method: 'GET', url: '/v2/x/manifests/latest', headers: { authorization: '[redacted]', 'user-agent': 'docker' } },
      login: { user: 'alice', password: '[redacted]' },
      subscription: { id: 7, url: 'https://hooks.example/x', secret: '[redacted]' },
    });
    expect(lines[0].location).toContain('X-Amz-Algorithm=AWS4-HMAC-SHA256');
    expect(lines[0].location).toContain('X-Amz-Signature=[redacted]');
    expect(lines[2].err).toMatchObject({ type: 'Error', message: expect.stringContaining('registry.example/v2/ failed') });
  });

  it('never writes our own secrets by their shape, wherever they appear in text, nor short Basic credentials', () => {
    const { logger, raw } = capture();
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz';
    const secrets = ['lpat_Zm9vYmFyYmF6cXV4', 'lrt_cmVmcmVzaC10b2tlbg', 'lrs_cm9ib3Qtc2VjcmV0', 'whsec_c2lnbmluZy1rZXk=', 'YTpi', 'eyJzdWIiOiJhbGljZSJ9', 'c2lnbmF0dXJlLWJ5dGVz', 'v1,c2lnbmF0dXJl', 'lses_Y29uc29sZS1zZXNzaW9u'];
    logger.info(`login with lpat_Zm9vYmFyYmF6cXV4 then refresh lrt_cmVmcmVzaC10b2tlbg`);
    logger.info(`console session lses_Y29uc29sZS1zZXNzaW9u signed out`);
    logger.warn({ err: new Error('robot lrs_cm9ib3Qtc2VjcmV0 refused; webhook whsec_c2lnbmluZy1rZXk= rotated') }, 'oops');
    logger.info({ note: `token ${jwt}`, headers: { 'webhook-signature': 'v1,c2lnbmF0dXJl' }, auth: 'Basic YTpi' }, 'shapes');
    logger.info({ challenge: 'Basic realm="lading-admin"' }, 'challenge');
    const text = raw.join('');
    for (const secret of secrets) expect(text).not.toContain(secret);
    expect(text).toContain('Basic realm=\\"lading-admin\\"');
  });
});

describe('createLogDestination', () => {
  it('keeps the process running and counts dropped lines when its file cannot be written (ENOSPC)', async () => {
    // /dev/full fails every write with ENOSPC, as a log file on a full disk does.
    const fd = openSync('/dev/full', 'w');
    const destination = createLogDestination(fd);
    const logger = createLogger({ service: 'test', level: 'info', destination });
    const line = 'x'.repeat(1024);
    for (let i = 0; i < 6000; i++) logger.info({ i }, line);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // 6,000 lines of ~1.1 KB are past the 4 MB backlog: the rest were dropped, not kept in memory.
    expect(destination.dropped).toBeGreaterThan(1000);
    closeSync(fd);
  });

  it('lets the process exit while its file cannot be written (ENOSPC)', () => {
    // pino flushes its destination on exit, and that flush retried a failing write forever.
    const script = [
      `const { openSync } = require('node:fs');`,
      `const { createLogDestination, createLogger } = require(${JSON.stringify(join(__dirname, 'logger.ts'))});`,
      `const logger = createLogger({ service: 'test', level: 'info', destination: createLogDestination(openSync('/dev/full', 'w')) });`,
      `for (let i = 0; i < 100; i++) logger.info('line');`,
      `setTimeout(() => { logger.info('last'); }, 100);`,
    ].join('\n');
    const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect({ signal: child.signal, status: child.status, stderr: child.stderr }).toEqual({ signal: null, status: 0, stderr: '' });
  });

  it('writes lines to its file descriptor', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'log-'));
    const file = join(dir, 'out.log');
    const fd = openSync(file, 'w');
    const logger = createLogger({ service: 'test', level: 'info', destination: createLogDestination(fd) });
    logger.info('hello');
    logger.flush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(JSON.parse(readFileSync(file, 'utf8').trim())).toMatchObject({ msg: 'hello', service: 'lading-test' });
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
});
