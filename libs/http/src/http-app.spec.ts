import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { OciError } from '@lading/oci';
import { withFront } from './http-app';

/** An express app that says it answered. */
function expressApp() {
  const app = express();
  app.use((_req, res) => {
    res.json({ by: 'express' });
  });
  return app;
}

describe('withFront', () => {
  it('hands each request to the front first, and to the app when the front did not take it', async () => {
    const seen: string[] = [];
    const app = withFront(expressApp(), (req, res) => {
      seen.push(req.url ?? '');
      if (req.url !== '/front') return false;
      res.end('front');
      return true;
    });
    expect((await request(app).get('/front')).text).toBe('front');
    expect((await request(app).get('/other')).body.by).toBe('express');
    expect(seen).toEqual(['/front', '/other']);
  });

  it('passes the caller\'s next to the front and the app when mounted, and leaves the app it wraps as it was', async () => {
    const inner = express();
    inner.use((_req, _res, next) => next(new OciError('DENIED')));
    const nexts: boolean[] = [];
    const fronted = withFront(inner, (_req, _res, next) => {
      nexts.push(next !== undefined);
      return false;
    });
    const parent = express();
    parent.use((req, res, next) => fronted(req, res, next));
    parent.use((err: OciError, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(299).json({ parentSaw: err.code });
    });
    expect((await request(parent).get('/x')).body).toEqual({ parentSaw: 'DENIED' });
    expect(nexts).toEqual([true]);
    // The wrapped app is not patched: called directly, the front does not see the request.
    await request(inner).get('/x');
    expect(nexts).toEqual([true]);
  });

  it('listens like an express app, through the front', async () => {
    const app = withFront(expressApp(), (req, res) => (req.url === '/front' ? (res.end('front'), true) : false));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      expect(await (await fetch(`${url}/front`)).text()).toBe('front');
      expect(((await (await fetch(`${url}/other`)).json()) as { by: string }).by).toBe('express');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
