import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { OciError, markUnavailable } from '@lading/oci';
import { createLogger } from '@lading/telemetry';
import { answerError, createErrorHandler, sendOciError, toOciError, withJsonFinalHandler } from './error-handler';
import { finishServiceApp } from './service-app';

const logger = createLogger({ service: 'test', level: 'silent' });

/** An app whose only route throws `err`, finished as every service is. */
function throwing(err: unknown): express.Express {
  const app = express();
  app.get('/boom', () => {
    throw err;
  });
  return finishServiceApp(app, logger);
}

const UNKNOWN_ENVELOPE = { errors: [{ code: 'UNKNOWN', message: 'unknown error', detail: null }] };

describe('sendOciError never throws and never answers HTML', () => {
  it.each([
    ['a non-Latin-1 character', 'Bearer realm="x",scope="repository:\u20ac:pull"'],
    ['a CR/LF (header injection)', 'Bearer realm="x"\r\nSet-Cookie: a=b'],
    ['a U+0000', 'Bearer realm="\u0000"'],
  ])('drops a header value with %s and still answers the error in the OCI envelope', async (_what, value) => {
    const res = await request(throwing(new OciError('UNAUTHORIZED', undefined, undefined, { headers: { 'WWW-Authenticate': value, 'Retry-After': '3' } }))).get('/boom');
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body.errors[0].code).toBe('UNAUTHORIZED');
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(res.headers['set-cookie']).toBeUndefined();
    // The valid headers of the same error are kept.
    expect(res.headers['retry-after']).toBe('3');
  });

  it('answers a fixed JSON 500 when the error itself cannot be rendered (a detail JSON cannot hold)', async () => {
    const res = await request(throwing(new OciError('MANIFEST_INVALID', 'x', { size: BigInt(1) }))).get('/boom');
    expect(res.status).toBe(500);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.body).toEqual(UNKNOWN_ENVELOPE);
  });

  it('ends the connection, without throwing, when the headers already went out', async () => {
    let threw: unknown = null;
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.write('partial');
      try {
        sendOciError(res, new OciError('BLOB_UNKNOWN'));
      } catch (err) {
        threw = err;
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const complete = await new Promise<boolean>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        res.resume();
        res.on('close', () => resolve(res.complete));
      });
      req.on('error', () => resolve(false));
    });
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect({ threw, complete }).toEqual({ threw: null, complete: false });
  });

  it('answers the fixed JSON 500 when logging the failure throws', async () => {
    const broken = { ...logger, error: () => { throw new Error('logger down'); } } as unknown as typeof logger;
    const app = express();
    app.get('/boom', () => {
      throw new Error('internal detail /srv/app.ts:12');
    });
    app.use(createErrorHandler(broken));
    const res = await request(withJsonFinalHandler(app, logger)).get('/boom');
    expect(res.status).toBe(500);
    expect(res.body).toEqual(UNKNOWN_ENVELOPE);
    expect(res.text).not.toMatch(/internal detail|\.ts:\d+/);
  });
});

describe("express's final handler is never reached", () => {
  it('renders an error that an error handler passes on as JSON, not as the HTML page with a stack', async () => {
    const app = express();
    app.get('/boom', () => {
      throw new Error('secret stack');
    });
    app.use((err: unknown, _req: express.Request, _res: express.Response, next: express.NextFunction) => next(err));
    const res = await request(withJsonFinalHandler(app, logger)).get('/boom');
    expect(res.status).toBe(500);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.text).not.toMatch(/<html|<pre>|secret stack|\n\s+at /i);
  });

  it('answers a request nothing handled with 404 NOT_FOUND in the envelope', async () => {
    const res = await request(withJsonFinalHandler(express(), logger)).get('/nowhere');
    expect(res.status).toBe(404);
    expect(res.body.errors[0].code).toBe('NOT_FOUND');
  });

  it('still hands errors to the parent app when mounted (called with a next)', async () => {
    const child = withJsonFinalHandler(express(), logger);
    child.use((_req, _res, next) => next(new OciError('DENIED')));
    const parent = express();
    parent.use((req, res, next) => child(req, res, next));
    parent.use((err: OciError, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(299).json({ parentSaw: err.code });
    });
    const res = await request(parent).get('/x');
    expect({ status: res.status, body: res.body }).toEqual({ status: 299, body: { parentSaw: 'DENIED' } });
  });

  it('answers a route parameter that does not percent-decode (%FF) with 400, not 500', async () => {
    const app = express();
    app.get('/users/:name', (req, res) => {
      res.json({ name: req.params.name });
    });
    const res = await request(finishServiceApp(app, logger)).get('/users/%FF');
    expect(res.status).toBe(400);
    expect(res.body.errors[0].code).toBe('UNSUPPORTED');
    expect(res.text).not.toMatch(/Failed to decode/);
  });
});

describe('toOciError', () => {
  it('keeps the 4xx of a client error raised by express or body-parser, and never their message', () => {
    expect(toOciError(Object.assign(new URIError('URI malformed'), { status: 400 })).status).toBe(400);
    expect(toOciError(Object.assign(new Error('too many parameters'), { status: 413, expose: true, type: 'parameters.too.many' })).status).toBe(413);
    expect(toOciError(Object.assign(new Error('bad'), { status: 400, expose: true })).message).toBe('the request is malformed');
  });

  it('does not believe a status on an error that is not a client error (a dependency failing)', () => {
    expect(toOciError(Object.assign(new Error('upstream said 404'), { status: 404 })).status).toBe(500);
  });

  it('answers 503 UNAVAILABLE for an error its adapter marked unavailable, or a refused connection, and 500 otherwise', () => {
    expect(toOciError(markUnavailable(Object.assign(new Error('database down'), { code: 'EDBUNAVAILABLE' })))).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
    expect(toOciError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
    expect(toOciError(Object.assign(new Error('a code alone proves nothing'), { code: 'EDBUNAVAILABLE' }))).toMatchObject({ code: 'UNKNOWN', status: 500 });
  });
});

describe('answerError', () => {
  it('does not throw whatever it is given', () => {
    const res = new http.ServerResponse(new http.IncomingMessage(null as never));
    for (const err of [undefined, null, 42, 'string', Symbol('s'), Object.create(null), new OciError('UNKNOWN', undefined, { loop: BigInt(2) })]) {
      expect(() => answerError({ method: 'GET', url: '/' } as http.IncomingMessage, res, err, logger)).not.toThrow();
    }
  });
});
