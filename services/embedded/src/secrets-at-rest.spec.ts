/**
 * Secrets at rest through the embedded registry's own start-up: with `secrets.key` the signing key and the webhook
 * secrets it stores are sealed, a restart with a rotated key re-seals them and keeps tokens and secrets working, and
 * without a key start-up says, in one warning line, that they are stored in plain text.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { PLAIN_SECRETS_WARNING, SEALED_PREFIX, secretKeyId } from '@lading/access';
import { LadingConfigInput, parseConfig } from '@lading/config';
import { createLogger } from '@lading/telemetry';
import { createEmbeddedRegistry } from './embedded-registry';

const KEY1 = Buffer.alloc(32, 21);
const KEY2 = Buffer.alloc(32, 22);
const ROOT = { user: 'root', password: 'root-password-1' };
const basic = `Basic ${Buffer.from(`${ROOT.user}:${ROOT.password}`).toString('base64')}`;
const silent = createLogger({ service: 'test', level: 'silent' });

describe('secrets at rest in the embedded registry', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-secrets-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const configWith = (secrets: LadingConfigInput['secrets']) =>
    parseConfig({
      data: { dir },
      auth: { enabled: true },
      admin: ROOT,
      secrets,
      webhooks: { allowList: ['127.0.0.1'] },
      gc: { enabled: false },
      log: { level: 'silent', access: false },
    });

  it('seals the signing key and webhook secrets it stores, and re-seals them under a rotated key at the next start', async () => {
    const first = await createEmbeddedRegistry(configWith({ key: KEY1.toString('base64') }), silent);
    try {
      await request(first.app).get('/token?service=lading').expect(200);
      const created = await request(first.app).post('/admin/v1/webhooks').set('Authorization', basic).send({ name: 'ci', url: 'http://127.0.0.1:9/hook' }).expect(201);
      const secret: string = created.body.secret;
      const keys = (await first.db.query<{ pem: string }>(`SELECT private_key_pem AS pem FROM signing_keys`)).rows;
      const hooks = (await first.db.query<{ secret: string }>(`SELECT secret FROM webhook_subscriptions`)).rows;
      expect(keys).toHaveLength(1);
      expect(keys[0].pem.startsWith(`${SEALED_PREFIX}${secretKeyId(KEY1)}:`)).toBe(true);
      expect(keys[0].pem).not.toContain('PRIVATE KEY');
      expect(hooks[0].secret.startsWith(`${SEALED_PREFIX}${secretKeyId(KEY1)}:`)).toBe(true);
      expect(hooks[0].secret).not.toContain(secret);
    } finally {
      await first.close();
    }

    const second = await createEmbeddedRegistry(configWith({ key: KEY2.toString('base64'), previousKeys: [KEY1.toString('base64')] }), silent);
    try {
      const stored = [
        ...(await second.db.query<{ value: string }>(`SELECT private_key_pem AS value FROM signing_keys`)).rows,
        ...(await second.db.query<{ value: string }>(`SELECT secret AS value FROM webhook_subscriptions`)).rows,
      ];
      expect(stored).toHaveLength(2);
      for (const { value } of stored) expect(value.startsWith(`${SEALED_PREFIX}${secretKeyId(KEY2)}:`)).toBe(true);
      // The re-sealed key still signs: no new key was needed.
      await request(second.app).get('/token?service=lading').expect(200);
      expect((await second.db.query(`SELECT kid FROM signing_keys`)).rows).toHaveLength(1);
    } finally {
      await second.close();
    }
  });

  it('says once at start-up, without a key, that the secrets are stored in plain text', async () => {
    const lines: string[] = [];
    const logger = createLogger({ service: 'test', level: 'warn', destination: { write: (line: string) => void lines.push(line) } });
    const registry = await createEmbeddedRegistry(configWith({}), logger);
    await registry.close();
    expect(lines.filter((line) => line.includes(PLAIN_SECRETS_WARNING))).toHaveLength(1);
  });

  it('lets go of the data directory when start-up fails on a key that cannot open the stored secrets', async () => {
    const first = await createEmbeddedRegistry(configWith({ key: KEY1.toString('base64') }), silent);
    await request(first.app).get('/token?service=lading').expect(200);
    await first.close();
    // KEY2 alone cannot open what KEY1 sealed: start-up refuses, and must not keep the lock or the database open.
    await expect(createEmbeddedRegistry(configWith({ key: KEY2.toString('base64') }), silent)).rejects.toThrow(secretKeyId(KEY1));
    const again = await createEmbeddedRegistry(configWith({ key: KEY1.toString('base64') }), silent);
    try {
      await request(again.app).get('/token?service=lading').expect(200);
    } finally {
      await again.close();
    }
  });
});
