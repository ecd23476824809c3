/**
 * Signing keys at rest, on the real PostgreSQL of tools/infra: with `secrets.key` the stored column holds no private
 * key and tokens still verify; keys stored before encryption, or under a previous key, are sealed under the current
 * key at start-up; a key that cannot open a stored one stops the start.
 */
import request from 'supertest';
import { SEALED_PREFIX, SecretCipher, createSecretCipher, keysFromJwks, secretKeyId, verifyToken } from '@lading/access';
import { parseConfig } from '@lading/config';
import { Database, createPgDatabase, migrate } from '@lading/metadata';
import { createLogger } from '@lading/telemetry';
import { ThrowawayDatabase, createThrowawayDatabase } from '@lading/testing';
import { createAuthService } from './auth-service';
import { createKeyRing } from './signing-keys';

const KEY1 = Buffer.alloc(32, 1);
const KEY2 = Buffer.alloc(32, 2);
const logger = createLogger({ service: 'test', level: 'silent' });
const under = (current: Buffer | null, previous: Buffer[] = []): SecretCipher => createSecretCipher({ current, previous });

describe('signing keys at rest on PostgreSQL', () => {
  let database: ThrowawayDatabase;
  let db: Database;

  const storedKeys = async () => (await db.query<{ kid: string; pem: string }>(`SELECT kid, private_key_pem AS pem FROM signing_keys ORDER BY created_at`)).rows;

  beforeAll(async () => {
    database = await createThrowawayDatabase('signing_keys');
    db = await createPgDatabase({ url: database.url, poolSize: 4, statementTimeoutMs: 30_000, connectTimeoutMs: 5_000 });
    await migrate(db);
  });
  beforeEach(async () => {
    await db.query(`DELETE FROM signing_keys`);
  });
  afterAll(async () => {
    await db.close();
    await database.drop();
  });

  it('stores no private key in the column when secrets.key is set, and the tokens it signs verify against the JWKS', async () => {
    const config = parseConfig({ auth: { enabled: true }, secrets: { key: KEY1.toString('base64') }, log: { level: 'silent', access: false } });
    const { app, keys } = createAuthService({ db, config, logger });
    const res = await request(app).get('/token?service=lading').expect(200);
    const pem = (await keys.signingKey()).privateKeyPem;
    expect(pem).toContain('PRIVATE KEY');
    const [row] = await storedKeys();
    expect(row.pem.startsWith(`${SEALED_PREFIX}${secretKeyId(KEY1)}:`)).toBe(true);
    expect(row.pem).not.toContain('PRIVATE KEY');
    expect(row.pem).not.toContain(pem.split('\n')[1]);
    const jwks = await request(app).get('/.well-known/jwks.json').expect(200);
    expect(verifyToken(res.body.token, keysFromJwks(jwks.body), { issuer: 'lading-auth', audience: 'lading', leewaySeconds: 60, now: Date.now }).sub).toBe('');
    // A new key made by a rotation is sealed too.
    await keys.rotate(60_000);
    expect((await storedKeys()).every((k) => k.pem.startsWith(SEALED_PREFIX))).toBe(true);
  });

  it('seals, at start-up, a key stored in plain text before encryption existed, and keeps signing with it', async () => {
    const before = await createKeyRing(db, under(null)).signingKey();
    expect((await storedKeys())[0].pem).toBe(before.privateKeyPem);
    const ring = createKeyRing(db, under(KEY1));
    expect(await ring.sealStored()).toBe(1);
    expect((await storedKeys())[0].pem).not.toContain('PRIVATE KEY');
    expect(await ring.signingKey()).toEqual(before);
    expect(await ring.sealStored()).toBe(0);
  });

  it('re-seals every stored key, retired ones too, under the new key when secrets.key rotates', async () => {
    const old = createKeyRing(db, under(KEY1));
    const first = await old.signingKey();
    await old.rotate(60_000);
    const second = await old.signingKey();
    expect((await storedKeys()).map((k) => k.pem.slice(0, SEALED_PREFIX.length + 16))).toEqual([`${SEALED_PREFIX}${secretKeyId(KEY1)}`, `${SEALED_PREFIX}${secretKeyId(KEY1)}`]);

    const rotating = createKeyRing(db, under(KEY2, [KEY1]));
    expect(await rotating.signingKey()).toEqual(second);
    expect(await rotating.sealStored()).toBe(2);
    expect((await storedKeys()).every((k) => k.pem.startsWith(`${SEALED_PREFIX}${secretKeyId(KEY2)}:`))).toBe(true);
    // The previous key is no longer needed.
    const after = createKeyRing(db, under(KEY2));
    expect(await after.signingKey()).toEqual(second);
    expect(first.kid).not.toBe(second.kid);
  });

  it('refuses to start when a stored key is sealed under a key it does not have, or when it has none, and changes nothing', async () => {
    await createKeyRing(db, under(KEY1)).signingKey();
    const stored = await storedKeys();
    await expect(createKeyRing(db, under(KEY2)).sealStored()).rejects.toThrow(`is encrypted under key ${secretKeyId(KEY1)}, which is neither secrets.key (${secretKeyId(KEY2)})`);
    await expect(createKeyRing(db, under(null)).sealStored()).rejects.toThrow(`is encrypted under key ${secretKeyId(KEY1)}, but no secrets.key is configured`);
    await expect(createKeyRing(db, under(null)).signingKey()).rejects.toThrow('no secrets.key is configured');
    expect(await storedKeys()).toEqual(stored);
  });
});
