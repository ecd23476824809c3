import express from 'express';
import request from 'supertest';
import { OciError } from '@lading/oci';
import { createLogger } from '@lading/telemetry';
import { withFastReads } from './fast-path';
import { finishServiceApp } from './service-app';

const logger = createLogger({ service: 'test', level: 'silent' });
const DIGEST = `sha256:${'a'.repeat(64)}`;

/** A service's app whose express part answers every request it gets with `{ by: 'express' }`. */
const serviceApp = () => finishServiceApp(express().use((_req, res) => void res.json({ by: 'express' })), logger);

describe('withFastReads', () => {
  it('serves GET and HEAD of the named routes on bare node objects, and everything else through the app', async () => {
    const app = withFastReads(serviceApp(), ['blob'], (req, res, match) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      // A bare node request: express's prototypes were never applied.
      res.end(req.method === 'HEAD' ? undefined : `${match.repository} ${'params' in req}`);
    }, logger);
    expect((await request(app).get(`/v2/team/app/blobs/${DIGEST}`)).text).toBe('team/app false');
    expect((await request(app).head(`/v2/team/app/blobs/${DIGEST}`)).status).toBe(200);
    expect((await request(app).delete(`/v2/team/app/blobs/${DIGEST}`)).body.by).toBe('express');
    expect((await request(app).get('/v2/team/app/manifests/v1')).body.by).toBe('express');
  });

  it('renders a thrown or rejected error in the OCI envelope, or hands it to the caller\'s next when mounted', async () => {
    const failing = (sync: boolean) =>
      withFastReads(serviceApp(), ['blob'], () => {
        if (sync) throw new OciError('BLOB_UNKNOWN');
        return Promise.reject(new OciError('BLOB_UNKNOWN'));
      }, logger);
    for (const sync of [true, false]) {
      const res = await request(failing(sync)).get(`/v2/r/blobs/${DIGEST}`);
      expect({ status: res.status, code: res.body.errors[0].code }).toEqual({ status: 404, code: 'BLOB_UNKNOWN' });
    }
    const mounted = failing(false);
    const parent = express();
    parent.use((req, res, next) => mounted(req, res, next));
    parent.use((err: OciError, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(299).json({ parentSaw: err.code });
    });
    expect((await request(parent).get(`/v2/r/blobs/${DIGEST}`)).body).toEqual({ parentSaw: 'BLOB_UNKNOWN' });
  });
});
