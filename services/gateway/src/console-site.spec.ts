import path from 'node:path';
import request from 'supertest';
import type { RawHandler } from '@lading/http';
import { createLogger } from '@lading/telemetry';
import { CONSOLE_CSP, createConsoleSite } from './console-site';
import { createGateway } from './gateway';

const FIXTURE = path.join(__dirname, '..', 'test', 'console-fixture');
const logger = createLogger({ service: 'test', level: 'silent' });

function gatewayServing(assets: string) {
  const refuse = () => {
    throw new Error('no service is reached by the console site');
  };
  const auth: RawHandler = (_req, res) => res.end('auth');
  return createGateway({ dispatch: { blob: refuse, manifest: refuse, auth }, logger, console: createConsoleSite({ assets }) });
}

function expectConsoleHeaders(res: request.Response): void {
  expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
  expect(res.headers['x-content-type-options']).toBe('nosniff');
  expect(res.headers['referrer-policy']).toBe('no-referrer');
}

describe('the console site', () => {
  const app = gatewayServing(FIXTURE);

  it('redirects / to /ui/', async () => {
    const res = await request(app).get('/').expect(302);
    expect(res.headers.location).toBe('/ui/');
  });

  it('redirects /ui to /ui/, where the app\'s relative links resolve', async () => {
    const res = await request(app).get('/ui').expect(302);
    expect(res.headers.location).toBe('/ui/');
    expectConsoleHeaders(res);
  });

  it('answers HEAD like GET, without a body', async () => {
    const res = await request(app).head('/ui/assets/app-3f2a1c.js').expect(200);
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(res.text ?? '').toBe('');
  });

  it('serves index.html at /ui/ with no-cache and the strict CSP', async () => {
    const res = await request(app).get('/ui/').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.text).toContain('Lading console (test fixture)');
    expectConsoleHeaders(res);
  });

  it('serves hashed assets as immutable for a year, with the strict CSP', async () => {
    const res = await request(app).get('/ui/assets/app-3f2a1c.js').expect(200);
    expect(res.headers['content-type']).toMatch(/javascript/);
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expectConsoleHeaders(res);
  });

  it('serves other files at the root of the build with no-cache', async () => {
    const res = await request(app).get('/ui/robots.txt').expect(200);
    expect(res.headers['cache-control']).toBe('no-cache');
  });

  it('answers an unknown path under /ui/ with index.html (the single-page app routes it), never cached', async () => {
    const res = await request(app).get('/ui/repositories/team/app').expect(200);
    expect(res.text).toContain('Lading console (test fixture)');
    expect(res.headers['cache-control']).toBe('no-cache');
    expectConsoleHeaders(res);
  });

  it('answers a missing hashed asset with a JSON 404, not the app page', async () => {
    const res = await request(app).get('/ui/assets/app-000000.js').expect(404);
    expect(res.body.errors[0].code).toBe('NOT_FOUND');
    expectConsoleHeaders(res);
  });

  it.each(['/ui/../console-secret.txt', '/ui/%2e%2e/console-secret.txt', '/ui/assets/..%2f..%2fconsole-secret.txt', '/ui/assets/%2e%2e/%2e%2e/console-secret.txt'])(
    'never serves a file outside the assets directory (%s)',
    async (traversal) => {
      const res = await request(app).get(traversal);
      expect(res.text).not.toContain('TOP-SECRET-OUTSIDE-ASSETS');
      expect([200, 403, 404]).toContain(res.status);
      if (res.status === 200) expect(res.text).toContain('Lading console (test fixture)');
    },
  );

  it('serves nothing at / or /ui/ when the console is not configured', async () => {
    const without = createGateway({ dispatch: { blob: () => undefined, manifest: () => undefined, auth: () => undefined }, logger });
    await request(without).get('/').expect(404);
    await request(without).get('/ui/').expect(404);
  });

  it('passes /ui/api/ on to the route table', async () => {
    const res = await request(app).get('/ui/api/session').expect(200);
    expect(res.text).toBe('auth');
  });

  it('answers 503 in the JSON error envelope, without a stack trace, when the assets directory is missing', async () => {
    const res = await request(gatewayServing(path.join(FIXTURE, 'no-such-build'))).get('/ui/').expect(503);
    expect(res.headers['content-type']).toMatch(/json/);
    expect(res.body.errors[0]).toMatchObject({ code: 'UNAVAILABLE' });
    expect(res.body.errors[0].message).toMatch(/console/);
    expect(res.text).not.toMatch(/at .*\.ts:\d+/);
  });
});
