/**
 * A webhook round trip against a running registry (the distributed cluster, say): creates a subscription to a
 * receiver on 127.0.0.1 (the registry needs LADING_WEBHOOKS_ALLOWLIST=127.0.0.1), pushes an image by tag, waits for
 * the signed CloudEvent and the Distribution push, verifies them, and deletes the subscription.
 * `node --import tsx tools/webhooks-soak/distributed-check.ts <registry-url> <admin-user> <admin-password>`
 */
import { createRegistryClient } from '@lading/client';
import { verifyWebhook } from '@lading/webhooks';
import { startTestReceiver } from '@lading/webhooks/test/test-receiver';
import { pushImage } from './push-image';

async function main(): Promise<void> {
  const [url, user, password] = process.argv.slice(2);
  if (!url || !user || !password) throw new Error('usage: distributed-check.ts <registry-url> <admin-user> <admin-password>');
  const authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}/admin/v1/webhooks${path}`, { method, headers: { authorization, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} /admin/v1/webhooks${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  const receiver = await startTestReceiver();
  const repository = `webhook-check/app${Date.now()}`;
  const ce = await admin('POST', '', { name: 'check-ce', namespace: repository, url: `${receiver.url}/ce` });
  const dist = await admin('POST', '', { name: 'check-dist', namespace: repository, format: 'distribution', url: `${receiver.url}/dist` });
  const started = Date.now();
  try {
    const client = createRegistryClient({ url });
    const manifest = await pushImage(client, repository, 'v1').finally(() => client.close());
    const deadline = Date.now() + 30_000;
    const pushed = () => receiver.requests.find((q) => q.path === '/ce' && JSON.parse(q.body).type === 'io.lading.manifest.pushed');
    const distPush = () => receiver.requests.find((q) => q.path === '/dist' && JSON.parse(q.body).events[0]?.target?.tag === 'v1');
    while (!(pushed() && distPush()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const a = pushed();
    const b = distPush();
    if (!a || !b) throw new Error(`no delivery within 30 s (got ${receiver.requests.length} requests)`);
    const checks = {
      cloudEventSigned: verifyWebhook(ce.secret, a.headers, a.body),
      cloudEventDigest: JSON.parse(a.body).data.digest === manifest.digest,
      distributionSigned: verifyWebhook(dist.secret, b.headers, b.body),
      distributionPushes: receiver.requests.filter((q) => q.path === '/dist' && JSON.parse(q.body).events[0]?.target?.mediaType === manifest.mediaType).length,
    };
    process.stdout.write(`webhook round trip in ${Date.now() - started} ms: ${JSON.stringify(checks)}\n`);
    if (!checks.cloudEventSigned || !checks.cloudEventDigest || !checks.distributionSigned || checks.distributionPushes !== 1) process.exitCode = 1;
  } finally {
    await admin('DELETE', `/${ce.id}`).catch(() => undefined);
    await admin('DELETE', `/${dist.id}`).catch(() => undefined);
    await receiver.close();
  }
}

main().catch((err) => {
  process.stderr.write(`webhook check failed: ${(err as Error)?.message ?? err}\n`);
  process.exit(1);
});
