/**
 * The gateway's access log: one line per request naming the verified principal and the client's address after
 * trusted proxies, on the pull fast path and through express alike, and nothing of the credentials that came with it.
 */
import request from 'supertest';
import { PRINCIPAL_HEADER, type RawHandler } from '@lading/http';
import { createLogger } from '@lading/telemetry';
import { GatewayDeps, createGateway } from './gateway';

const okService: RawHandler = (req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'Content-Length': '2' });
    res.end('ok');
  });
};

/** A token the fake verifier knows, and the subject it names. */
const TOKENS: Record<string, string> = { 'tok-robot-7f3a9c1e5b': 'robot$ci', 'tok-alice-0d8e2b4f6a': 'alice' };

/** Verification as the real step does it: the principal header is set from the token, or the request refused. */
const authorize: GatewayDeps['authorize'] = async (req) => {
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
  req.headers[PRINCIPAL_HEADER] = TOKENS[token] ?? '';
};

function gatewayLogging(deps: Partial<GatewayDeps>): { app: ReturnType<typeof createGateway>; lines: () => Array<Record<string, unknown>>; raw: () => string } {
  const written: string[] = [];
  const logger = createLogger({ service: 'test', level: 'info', destination: { write: (line: string) => written.push(line) } });
  const app = createGateway({ dispatch: { manifest: okService, blob: okService, auth: okService }, logger, accessLog: true, ...deps });
  return {
    app,
    lines: () => written.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === 'request'),
    raw: () => written.join(''),
  };
}

describe('the access log', () => {
  it('names the verified principal and the client address after the trusted proxy, never the credentials', async () => {
    const { app, lines, raw } = gatewayLogging({ authorize, trustedProxies: 1 });
    const forwarded = '198.51.100.1, 203.0.113.7';
    // A pull (fast path) as a robot, and a push (express) as a user who also claims to be someone else.
    await request(app).get('/v2/team/app/manifests/v1').set('Authorization', 'Bearer tok-robot-7f3a9c1e5b').set('X-Forwarded-For', forwarded).expect(200);
    await request(app)
      .put('/v2/team/app/manifests/v1')
      .set('Authorization', 'Bearer tok-alice-0d8e2b4f6a')
      .set('X-Forwarded-For', forwarded)
      .set(PRINCIPAL_HEADER, 'admin')
      .send('{}')
      .expect(200);
    expect(lines().map((l) => [l.method, l.addr, l.principal])).toEqual([
      ['GET', '203.0.113.7', 'robot$ci'],
      ['PUT', '203.0.113.7', 'alice'],
    ]);
    expect(raw()).not.toMatch(/tok-robot|tok-alice|"admin"/);
  });

  it('names no principal when the request is anonymous, whatever principal header the client sends', async () => {
    const { app, lines } = gatewayLogging({});
    await request(app).get('/v2/team/app/manifests/v1').set(PRINCIPAL_HEADER, 'admin').expect(200);
    const [line] = lines();
    expect(line.principal).toBeUndefined();
    // No proxy is trusted: the address is the peer's, not what X-Forwarded-For might claim.
    expect(line.addr).toMatch(/127\.0\.0\.1$/);
  });
});
