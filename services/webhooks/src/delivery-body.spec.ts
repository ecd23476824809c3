import { EVENT_TYPES, LadingEvent } from '@lading/events';
import { CONTENT_TYPES, distributionAction, renderDelivery } from './delivery-body';

function event(type: string, data: Partial<LadingEvent['data']>): LadingEvent {
  return {
    specversion: '1.0',
    id: '0192f3c4-0000-7000-8000-000000000001',
    source: '//registry.example:5000/lading/manifest',
    type: type as LadingEvent['type'],
    subject: 'team/app',
    time: '2026-11-23T10:00:00.000Z',
    datacontenttype: 'application/json',
    partitionkey: 'team/app',
    sequence: '00000000000000000007',
    data: {
      repository: 'team/app',
      namespace: 'team',
      digest: null,
      mediaType: null,
      artifactType: null,
      size: null,
      tag: null,
      previousDigest: null,
      references: [],
      subject: null,
      fromRepository: null,
      proxy: null,
      actor: { name: 'ci-bot', type: 'robot' },
      request: { id: 'req-1', addr: '10.0.0.9:51234', method: 'PUT', useragent: 'skopeo/1.15' },
      ...data,
    },
  };
}

const D = 'sha256:' + 'a'.repeat(64);
const L = 'sha256:' + 'b'.repeat(64);

describe('delivery bodies', () => {
  it('sends a CloudEvent as the bytes the bus carried', () => {
    const json = JSON.stringify(event(EVENT_TYPES.manifestPushed, { digest: D }));
    expect(renderDelivery('cloudevents', json, {})).toEqual({ contentType: CONTENT_TYPES.cloudevents, body: json });
    expect(CONTENT_TYPES.cloudevents).toBe('application/cloudevents+json');
  });

  it('renders a push by tag as one Distribution push carrying the tag, the references and an absolute URL', () => {
    const e = event(EVENT_TYPES.manifestPushed, {
      digest: D,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: 512,
      tag: 'v1',
      references: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: L, size: 99 }],
    });
    const rendered = renderDelivery('distribution', JSON.stringify(e), { baseUrl: 'https://registry.example' });
    expect(rendered.contentType).toBe('application/vnd.docker.distribution.events.v2+json');
    expect(JSON.parse(rendered.body)).toEqual({
      events: [
        {
          id: e.id,
          timestamp: e.time,
          action: 'push',
          target: {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: D,
            size: 512,
            length: 512,
            repository: 'team/app',
            url: `https://registry.example/v2/team/app/manifests/${D}`,
            tag: 'v1',
            references: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: L, size: 99 }],
          },
          request: { id: 'req-1', addr: '10.0.0.9:51234', host: 'registry.example', method: 'PUT', useragent: 'skopeo/1.15' },
          actor: { name: 'ci-bot' },
          source: { addr: 'registry.example:5000', instanceID: '//registry.example:5000/lading/manifest' },
        },
      ],
    });
  });

  it('renders blob pushes and mounts with the blob URL, and mounts with their source repository', () => {
    const pushed = JSON.parse(renderDelivery('distribution', JSON.stringify(event(EVENT_TYPES.blobUploaded, { digest: L, size: 99, mediaType: 'application/octet-stream' })), {}).body).events[0];
    expect(pushed).toMatchObject({ action: 'push', target: { mediaType: 'application/octet-stream', digest: L, size: 99, length: 99, url: `/v2/team/app/blobs/${L}` } });
    const mounted = JSON.parse(renderDelivery('distribution', JSON.stringify(event(EVENT_TYPES.blobMounted, { digest: L, size: 99, fromRepository: 'base/os' })), {}).body).events[0];
    expect(mounted).toMatchObject({ action: 'mount', target: { digest: L, repository: 'team/app', fromRepository: 'base/os' } });
  });

  it('renders deletes with only what Distribution sends', () => {
    const render = (type: string, data: Partial<LadingEvent['data']>) => JSON.parse(renderDelivery('distribution', JSON.stringify(event(type, data)), {}).body).events[0].target;
    expect(render(EVENT_TYPES.manifestDeleted, { digest: D, mediaType: 'x', size: 3 })).toEqual({ repository: 'team/app', digest: D });
    expect(render(EVENT_TYPES.tagDeleted, { digest: D, tag: 'v1' })).toEqual({ repository: 'team/app', tag: 'v1' });
    expect(render(EVENT_TYPES.blobDeleted, { digest: L })).toEqual({ repository: 'team/app', digest: L });
  });

  it('maps each Lading type to its Distribution action, and the ones Distribution lacks to none', () => {
    expect(distributionAction(EVENT_TYPES.tagUpdated)).toBe('push');
    expect(distributionAction(EVENT_TYPES.repositoryCreated)).toBeNull();
    expect(distributionAction(EVENT_TYPES.referrerAttached)).toBeNull();
    expect(distributionAction('io.lading.repository.deleted')).toBe('delete');
    expect(JSON.parse(renderDelivery('distribution', JSON.stringify(event(EVENT_TYPES.referrerAttached, {})), {}).body)).toEqual({ events: [] });
  });

  it('sends an anonymous actor as an empty object, as Distribution does', () => {
    const e = event(EVENT_TYPES.manifestDeleted, { digest: D, actor: { name: null, type: 'anonymous' }, request: null });
    expect(JSON.parse(renderDelivery('distribution', JSON.stringify(e), {}).body).events[0]).toMatchObject({ actor: {}, request: {} });
  });
});
