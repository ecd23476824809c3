/**
 * `lading-admin webhook ...`, run as a real process against an embedded registry (auth on, loopback allowed for
 * webhooks) whose in-process worker delivers to a receiver in this process.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '@lading/config';
import { EmbeddedRegistry, createEmbeddedRegistry } from '@lading/embedded';
import { createLogger } from '@lading/telemetry';
import { verifyWebhook } from '@lading/webhooks';
import { TestReceiver, startTestReceiver } from '@lading/webhooks/test/test-receiver';
import { ADMIN, cli, cliAll } from './lading-admin-testing';

describe('lading-admin webhook', () => {
  let dir: string;
  let registry: EmbeddedRegistry;
  let server: Server;
  let url: string;
  let receiver: TestReceiver;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-admin-webhook-'));
    receiver = await startTestReceiver();
    registry = await createEmbeddedRegistry(
      parseConfig({ data: { dir }, auth: { enabled: true }, admin: ADMIN, webhooks: { allowList: ['127.0.0.1'], pollInterval: '100ms' }, log: { level: 'silent', access: false } }),
      createLogger({ service: 'test', level: 'silent' }),
    );
    server = registry.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    if (server) await new Promise((resolve) => server.close(resolve));
    await registry?.close();
    await receiver?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const ok = async (args: string[]) => {
    const result = await cli(['--url', url, ...args]);
    expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: '' });
    return result.stdout;
  };

  it('creates, lists, shows, updates, pings, lists deliveries, redelivers, rotates and deletes', async () => {
    const created = await ok(['webhook', 'create', 'ci', `${receiver.url}/ci`, '--namespace', 'team', '--events', 'manifest.pushed,tag.updated']);
    const id = /created webhook ([0-9a-f-]{36}) \(ci\)/.exec(created)![1];
    const secret = /secret: (whsec_\S+)/.exec(created)![1];

    const [listed, shownText] = await Promise.all([ok(['webhook', 'list']), ok(['webhook', 'show', id])]);
    expect(listed).toMatch(new RegExp(`${id}\\s+ci\\s+team\\s+cloudevents\\s+yes\\s+manifest.pushed,tag.updated\\s+${receiver.url}/ci`));
    expect(listed).not.toContain(secret);
    const shown = JSON.parse(shownText);
    expect(shown).toMatchObject({ id, name: 'ci', namespace: 'team', eventTypes: ['io.lading.manifest.pushed', 'io.lading.tag.updated'] });
    expect(shown.secret).toBeUndefined();

    const updated = JSON.parse(await ok(['webhook', 'update', id, '--format', 'distribution', '--events', 'all', '--disabled', '--json']));
    expect(updated).toMatchObject({ id, format: 'distribution', eventTypes: [], enabled: false });
    expect(updated.secret).toBeUndefined();
    await ok(['webhook', 'update', id, '--format', 'cloudevents', '--enable']);

    const ping = await ok(['webhook', 'ping', id]);
    const [, eventId, deliveryId] = /queued ping ([0-9a-f-]{36}) as delivery ([0-9a-f-]{36})/.exec(ping)!;
    const deadline = Date.now() + 15_000;
    const status = async () => (await registry.db.query<{ status: string }>(`SELECT status FROM webhook_deliveries WHERE id = $1`, [deliveryId])).rows[0]?.status;
    while ((await status()) !== 'delivered' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const got = receiver.requests.find((r) => r.headers['webhook-id'] === eventId)!;
    expect(verifyWebhook(secret, got.headers, got.body)).toBe(true);

    const deliveries = await ok(['webhook', 'deliveries', id, '--status', 'delivered']);
    expect(deliveries).toMatch(new RegExp(`${deliveryId}\\s+${eventId}\\s+webhook.ping\\s+-\\s+delivered\\s+1\\s+200`));
    const [redelivered, rotated] = await Promise.all([ok(['webhook', 'redeliver', id, deliveryId]), ok(['webhook', 'rotate', id])]);
    expect(redelivered).toContain(`queued delivery ${deliveryId} (event ${eventId}) again`);
    expect(/secret: (whsec_\S+)/.exec(rotated)![1]).not.toBe(secret);
    expect(await ok(['webhook', 'delete', id])).toContain(`deleted webhook ${id}`);
    expect(await ok(['webhook', 'list'])).toBe('no webhooks\n');
  });

  it('exits 1 with the registry\'s reason for refused input, and 2 for bad usage', async () => {
    const [refused, missing, usage, nothing] = await cliAll([
      { args: ['--url', url, 'webhook', 'create', 'bad', 'http://169.254.169.254/latest'] },
      { args: ['--url', url, 'webhook', 'show', '01234567-89ab-7def-8123-456789abcdef'] },
      { args: ['--url', url, 'webhook', 'create', 'only-a-name'] },
      { args: ['--url', url, 'webhook', 'update', '01234567-89ab-7def-8123-456789abcdef'] },
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/url refused: .*metadata address .*\(400 UNSUPPORTED\)/);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/webhook not found \(404 NOT_FOUND\)/);
    expect(usage.code).toBe(2);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/nothing to change/);
  });

  it('answers --help on every webhook subcommand', async () => {
    const subs = ['create', 'list', 'show', 'update', 'delete', 'rotate', 'deliveries', 'redeliver', 'ping'];
    const results = await cliAll([{ args: ['webhook', '--help'] }, ...subs.map((s) => ({ args: ['webhook', s, '--help'] }))]);
    expect(results[0]).toMatchObject({ code: 0 });
    for (const sub of subs) expect(results[0].stdout).toContain(`lading-admin webhook ${sub}`);
    for (const [i, sub] of subs.entries()) {
      expect(results[i + 1]).toMatchObject({ code: 0, stderr: '' });
      expect(results[i + 1].stdout).toMatch(new RegExp(`^usage: lading-admin webhook ${sub}`));
    }
  });
});
