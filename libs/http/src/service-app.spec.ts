import request from 'supertest';
import { createLogger } from '@lading/telemetry';
import { RouteHandlers, createServiceApp, dispatchRoutes, finishServiceApp } from './service-app';

const logger = createLogger({ service: 'test', level: 'silent' });

describe('createServiceApp', () => {
  it('answers /healthz, and /readyz as its check says', async () => {
    let failure: Error | null = null;
    const app = finishServiceApp(
      createServiceApp(async () => {
        if (failure) throw failure;
      }),
      logger,
    );
    expect((await request(app).get('/healthz')).body).toEqual({ status: 'ok' });
    expect((await request(app).get('/readyz')).body).toEqual({ status: 'ready' });
    failure = new Error('database down');
    const down = await request(app).get('/readyz');
    expect({ status: down.status, body: down.body }).toEqual({ status: 503, body: { status: 'unavailable', reason: 'database down' } });
  });
});

describe('dispatchRoutes', () => {
  function appWith(handlers: RouteHandlers) {
    const app = createServiceApp(async () => undefined);
    app.use(dispatchRoutes(handlers));
    return finishServiceApp(app, logger);
  }

  it('calls the handler of the route and method, with the match; HEAD falls back to GET', async () => {
    const app = appWith({
      'manifest GET': async (req, res, match) => {
        res.json({ method: req.method, repository: match.repository, reference: match.param });
      },
      'manifest PUT': async (_req, res) => {
        res.status(201).end();
      },
    });
    expect((await request(app).get('/v2/team/app/manifests/v1')).body).toEqual({ method: 'GET', repository: 'team/app', reference: 'v1' });
    expect((await request(app).head('/v2/team/app/manifests/v1')).status).toBe(200);
    expect((await request(app).put('/v2/team/app/manifests/v1')).status).toBe(201);
  });

  it('prefers a HEAD handler of its own, and passes routes and methods it has no handler for on', async () => {
    const app = appWith({
      'blob GET': async (_req, res) => {
        res.status(200).send('body');
      },
      'blob HEAD': async (_req, res) => {
        res.status(204).end();
      },
    });
    const digest = `sha256:${'a'.repeat(64)}`;
    expect((await request(app).head(`/v2/r/blobs/${digest}`)).status).toBe(204);
    expect((await request(app).delete(`/v2/r/blobs/${digest}`)).body.errors[0].code).toBe('NOT_FOUND');
    expect((await request(app).get('/v2/r/tags/list')).body.errors[0].code).toBe('NOT_FOUND');
  });

  it('refuses a misspelt key, or another owner\'s route, at compile time', () => {
    const noop = async () => undefined;
    // @ts-expect-error 'manifset' is not a route
    dispatchRoutes({ 'manifset PUT': noop });
    // @ts-expect-error the blob route takes no PUT
    dispatchRoutes({ 'blob PUT': noop });
    // @ts-expect-error the manifest route is not the blob service's
    dispatchRoutes<'blob'>({ 'manifest PUT': noop });
    expect(typeof dispatchRoutes<'blob'>({ 'upload PATCH': noop })).toBe('function');
  });
});
