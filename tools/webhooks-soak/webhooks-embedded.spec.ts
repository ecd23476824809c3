/**
 * Webhooks end to end through the embedded registry on the real PostgreSQL: an image pushed by tag reaches each
 * subscription whose namespace matches, and no other: a signed CloudEvent per event for a CloudEvents subscriber,
 * and ONE Distribution push carrying the tag (plus its blob pushes) for a Distribution subscriber.
 */
import { EVENT_TYPES } from '@lading/events';
import { verifyWebhook } from '@lading/webhooks';
import { TestReceiver, startTestReceiver } from '@lading/webhooks/test/test-receiver';
import { RegistryOnPostgres, startRegistryOnPostgres } from './embedded-on-postgres';

describe('webhooks through the embedded registry', () => {
  let r: RegistryOnPostgres;
  let receiver: TestReceiver;
  const hooks: Record<string, { id: string; secret: string }> = {};

  const at = (p: string) => receiver.requests.filter((q) => q.path === p);

  async function until(check: () => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error('timed out waiting for deliveries');
      await new Promise((res) => setTimeout(res, 25));
    }
  }

  beforeAll(async () => {
    receiver = await startTestReceiver();
    r = await startRegistryOnPostgres('webhooks_e2e', { webhooks: { allowList: ['127.0.0.1'], pollInterval: '100ms' } });
    for (const [name, namespace, format] of [
      ['team-ce', 'team', 'cloudevents'],
      ['team-dist', 'team', 'distribution'],
      ['other-ce', 'other', 'cloudevents'],
      ['all-pushes', '', 'cloudevents'],
    ] as const) {
      const created = await r.admin('POST', '/webhooks', {
        name,
        namespace,
        format,
        url: `${receiver.url}/${name}`,
        eventTypes: name === 'all-pushes' ? ['manifest.pushed'] : undefined,
      });
      expect(created.status).toBe(201);
      hooks[name] = { id: created.body.id, secret: created.body.secret };
    }
  });
  afterAll(async () => {
    await r?.close();
    await receiver?.close();
  });

  it('delivers a push by tag to the matching subscriptions only, signed, in the format each asked for', async () => {
    const manifest = await r.pushImage('team/app', 'v1');
    await r.registry.flushEvents();
    // team-ce: repository.created, two blob.uploaded, manifest.pushed, tag.updated. team-dist: two blob pushes and one manifest push.
    await until(() => at('/team-ce').length >= 5 && at('/team-dist').length >= 3 && at('/all-pushes').length >= 1);
    await new Promise((res) => setTimeout(res, 500));

    const ce = at('/team-ce');
    expect(ce.map((q) => JSON.parse(q.body).type).sort()).toEqual(
      [EVENT_TYPES.blobUploaded, EVENT_TYPES.blobUploaded, EVENT_TYPES.manifestPushed, EVENT_TYPES.repositoryCreated, EVENT_TYPES.tagUpdated].sort(),
    );
    for (const q of ce) {
      expect(q.headers['content-type']).toBe('application/cloudevents+json');
      expect(verifyWebhook(hooks['team-ce'].secret, q.headers, q.body)).toBe(true);
      expect(verifyWebhook(hooks['team-dist'].secret, q.headers, q.body)).toBe(false);
      expect(JSON.parse(q.body).id).toBe(q.headers['webhook-id']);
    }
    const pushed = JSON.parse(ce.find((q) => JSON.parse(q.body).type === EVENT_TYPES.manifestPushed)!.body);
    expect(pushed).toMatchObject({ specversion: '1.0', subject: `team/app@${manifest.digest}`, data: { repository: 'team/app', digest: manifest.digest, tag: 'v1' } });

    const dist = at('/team-dist');
    expect(dist).toHaveLength(3);
    const events = dist.map((q) => {
      expect(q.headers['content-type']).toBe('application/vnd.docker.distribution.events.v2+json');
      expect(verifyWebhook(hooks['team-dist'].secret, q.headers, q.body)).toBe(true);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Distribution events, read field by field
      const envelope = JSON.parse(q.body) as { events: Array<Record<string, any>> };
      expect(envelope.events).toHaveLength(1);
      return envelope.events[0];
    });
    const manifestPushes = events.filter((e) => e.target.mediaType === manifest.mediaType);
    expect(manifestPushes).toHaveLength(1);
    expect(manifestPushes[0]).toMatchObject({
      action: 'push',
      target: { digest: manifest.digest, size: manifest.body.length, length: manifest.body.length, repository: 'team/app', tag: 'v1', url: `/v2/team/app/manifests/${manifest.digest}` },
      request: { method: 'PUT' },
      actor: {},
    });
    expect(manifestPushes[0].target.references).toHaveLength(2);
    expect(events.filter((e) => e.target.mediaType === 'application/octet-stream').map((e) => e.action)).toEqual(['push', 'push']);

    const all = at('/all-pushes');
    expect(all).toHaveLength(1);
    expect(JSON.parse(all[0].body).type).toBe(EVENT_TYPES.manifestPushed);
    expect(at('/other-ce')).toHaveLength(0);

    const listed = await r.admin('GET', `/webhooks/${hooks['team-dist'].id}/deliveries?status=delivered`);
    expect(listed.body.deliveries).toHaveLength(3);
  });

  it('routes by namespace: a push to other/... reaches the other subscription and the catch-all, not team', async () => {
    const before = { team: at('/team-ce').length, dist: at('/team-dist').length };
    await r.pushImage('other/tool', 'latest');
    await r.registry.flushEvents();
    await until(() => at('/other-ce').length >= 5 && at('/all-pushes').length >= 2);
    await new Promise((res) => setTimeout(res, 500));
    expect(at('/team-ce')).toHaveLength(before.team);
    expect(at('/team-dist')).toHaveLength(before.dist);
    for (const q of at('/other-ce')) {
      expect(JSON.parse(q.body).data.repository).toBe('other/tool');
      expect(verifyWebhook(hooks['other-ce'].secret, q.headers, q.body)).toBe(true);
    }
  });

  it('reports deliveries in the registry metrics', async () => {
    const text = await r.scrapeMetrics();
    expect(text).toMatch(/lading_webhook_deliveries_total\{result="delivered"\} (\d+)/);
    // Every request the receiver answered 2xx, and nothing else: 9 for the first push, 6 for the second.
    expect(Number(/result="delivered"\} (\d+)/.exec(text)![1])).toBe(receiver.requests.length);
    expect(receiver.requests).toHaveLength(15);
    expect(text).toMatch(/lading_webhook_pending 0\n/);
  });
});
