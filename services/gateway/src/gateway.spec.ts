import request from 'supertest';
import { RawHandler, localsOf } from '@lading/http';
import { OciError } from '@lading/oci';
import { createLogger } from '@lading/telemetry';
import { createGateway } from './gateway';

function recordingDispatch() {
  const seen: Array<{ owner: string; route: string; repository: string; param: string }> = [];
  const handler =
    (owner: string): RawHandler =>
    (_req, res) => {
      const match = localsOf(res).route!;
      seen.push({ owner, route: match.route.name, repository: match.repository, param: match.param });
      res.statusCode = 299;
      res.end();
    };
  return { seen, dispatch: { blob: handler('blob'), manifest: handler('manifest'), auth: handler('auth') } };
}

describe('gateway', () => {
  const logger = createLogger({ service: 'test', level: 'silent' });

  it('answers GET /v2/ with 200, an empty JSON object and the API version header', async () => {
    const app = createGateway({ dispatch: recordingDispatch().dispatch, logger });
    const res = await request(app).get('/v2/');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    expect(res.headers['docker-distribution-api-version']).toBe('registry/2.0');
  });

  it('dispatches each route to the service that owns it, with the repository matched by the grammar', async () => {
    const { seen, dispatch } = recordingDispatch();
    const app = createGateway({ dispatch, logger });
    await request(app).get('/v2/team/blobs/app/manifests/latest');
    await request(app).post('/v2/a/b/c/blobs/uploads/');
    await request(app).get('/v2/a/blobs/sha256:' + 'a'.repeat(64));
    await request(app).get('/v2/_catalog');
    await request(app).get('/v2/x/referrers/sha256:' + 'b'.repeat(64));
    expect(seen).toEqual([
      { owner: 'manifest', route: 'manifest', repository: 'team/blobs/app', param: 'latest' },
      { owner: 'blob', route: 'uploadStart', repository: 'a/b/c', param: '' },
      { owner: 'blob', route: 'blob', repository: 'a', param: 'sha256:' + 'a'.repeat(64) },
      { owner: 'manifest', route: 'catalog', repository: '', param: '' },
      { owner: 'manifest', route: 'referrers', repository: 'x', param: 'sha256:' + 'b'.repeat(64) },
    ]);
  });

  it('answers unknown paths with 404 NOT_FOUND in the OCI envelope, and the API version header', async () => {
    const app = createGateway({ dispatch: recordingDispatch().dispatch, logger });
    const res = await request(app).get('/v2/foo/nothing-here');
    expect(res.status).toBe(404);
    expect(res.body.errors[0].code).toBe('NOT_FOUND');
    expect(res.headers['docker-distribution-api-version']).toBe('registry/2.0');
  });

  it('answers a method the route does not accept with 405 UNSUPPORTED and an Allow header', async () => {
    const app = createGateway({ dispatch: recordingDispatch().dispatch, logger });
    const res = await request(app).post('/v2/foo/tags/list');
    expect(res.status).toBe(405);
    expect(res.body.errors[0].code).toBe('UNSUPPORTED');
    expect(res.headers.allow).toBe('GET, HEAD');
  });

  it('refuses repository names that break the grammar with 400 NAME_INVALID before dispatching', async () => {
    const { seen, dispatch } = recordingDispatch();
    const app = createGateway({ dispatch, logger });
    for (const path of ['/v2/Foo/tags/list', '/v2/a%2Fb/tags/list', '/v2/a//b/tags/list', '/v2/a/../b/tags/list']) {
      const res = await request(app).get(path);
      expect({ path, status: res.status, code: res.body.errors?.[0]?.code }).toEqual({ path, status: 400, code: 'NAME_INVALID' });
    }
    expect(seen).toHaveLength(0);
  });

  it('renders an error thrown by a service as the OCI envelope without internals', async () => {
    const app = createGateway({
      dispatch: {
        blob: () => {
          throw new Error('secret internal detail');
        },
        manifest: (_req, _res, next) => next(),
        auth: ((_req, _res, next) => next()) as RawHandler,
      },
      logger,
    });
    const res = await request(app).get('/v2/foo/blobs/sha256:' + 'a'.repeat(64));
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ errors: [{ code: 'UNKNOWN', message: 'unknown error', detail: null }] });
    expect(res.text).not.toContain('secret');
  });

  it('gives every request an id, keeping one the client or load balancer sent', async () => {
    const app = createGateway({ dispatch: recordingDispatch().dispatch, logger });
    expect((await request(app).get('/v2/').set('X-Request-Id', 'abc-123')).headers['x-request-id']).toBe('abc-123');
    expect((await request(app).get('/v2/')).headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('gateway GET /version', () => {
  const logger = createLogger({ service: 'test', level: 'silent' });
  const version = { name: 'lading', version: '9.8.7' };

  it('answers the name and version it was built with, as JSON, with the headers every response carries', async () => {
    const app = createGateway({ dispatch: recordingDispatch().dispatch, logger, version });
    const res = await request(app).get('/version');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual({ name: 'lading', version: '9.8.7' });
    expect(res.headers['docker-distribution-api-version']).toBe('registry/2.0');
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  it('answers without a token when auth is on, while /v2/ still asks for one', async () => {
    const refuseAll = async () => {
      throw new OciError('UNAUTHORIZED');
    };
    const app = createGateway({ dispatch: recordingDispatch().dispatch, logger, version, authorize: refuseAll });
    expect((await request(app).get('/version')).status).toBe(200);
    expect((await request(app).get('/v2/')).status).toBe(401);
  });

  it('dispatches nothing: /version is outside /v2/ and the route table, and other methods are not found', async () => {
    const { seen, dispatch } = recordingDispatch();
    const app = createGateway({ dispatch, logger, version });
    const res = await request(app).post('/version');
    expect(res.status).toBe(404);
    expect(res.body.errors[0].code).toBe('NOT_FOUND');
    expect((await request(app).get('/version/more')).status).toBe(404);
    expect(seen).toEqual([]);
  });

  it('has no /version when it is given no version', async () => {
    const res = await request(createGateway({ dispatch: recordingDispatch().dispatch, logger })).get('/version');
    expect(res.status).toBe(404);
    expect(res.body.errors[0].code).toBe('NOT_FOUND');
  });
});

