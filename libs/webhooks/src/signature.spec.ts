import { execFileSync } from 'node:child_process';
import { generateWebhookSecret, signWebhook, verifyWebhook, webhookSigningKey } from './signature';

describe('webhook signatures (Standard Webhooks)', () => {
  // The example of the Standard Webhooks specification; the expected value was also recomputed with openssl.
  const SPEC_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const SPEC_ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
  const SPEC_TS = 1614265330;
  const SPEC_BODY = '{"test": 2432232314}';
  const SPEC_SIGNATURE = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';

  it('signs the specification example to its published signature', () => {
    expect(signWebhook(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY)).toEqual({
      'webhook-id': SPEC_ID,
      'webhook-timestamp': String(SPEC_TS),
      'webhook-signature': SPEC_SIGNATURE,
    });
  });

  it('agrees with openssl on a fresh key and body', () => {
    const secret = generateWebhookSecret();
    const body = JSON.stringify({ id: 'e1', data: { repository: 'team/app', tag: 'ü-ñ' } });
    const signed = signWebhook(secret, 'e1', 1700000000, body);
    const hexKey = webhookSigningKey(secret).toString('hex');
    const openssl = execFileSync('openssl', ['dgst', '-sha256', '-mac', 'HMAC', '-macopt', `hexkey:${hexKey}`, '-binary'], {
      input: Buffer.from(`e1.1700000000.${body}`, 'utf8'),
    }).toString('base64');
    expect(signed['webhook-signature']).toBe(`v1,${openssl}`);
  });

  it('verifies the specification example at its own time, and not five minutes and one second later', () => {
    const headers = { 'webhook-id': SPEC_ID, 'webhook-timestamp': String(SPEC_TS), 'webhook-signature': SPEC_SIGNATURE };
    expect(verifyWebhook(SPEC_SECRET, headers, SPEC_BODY, { now: () => SPEC_TS * 1000 })).toBe(true);
    expect(verifyWebhook(SPEC_SECRET, headers, SPEC_BODY, { now: () => (SPEC_TS + 300) * 1000 })).toBe(true);
    expect(verifyWebhook(SPEC_SECRET, headers, SPEC_BODY, { now: () => (SPEC_TS + 301) * 1000 })).toBe(false);
    expect(verifyWebhook(SPEC_SECRET, headers, SPEC_BODY, { now: () => (SPEC_TS - 301) * 1000 })).toBe(false);
  });

  it('refuses a changed body, id, timestamp, secret or signature version', () => {
    const now = () => SPEC_TS * 1000;
    const ok = { 'webhook-id': SPEC_ID, 'webhook-timestamp': String(SPEC_TS), 'webhook-signature': SPEC_SIGNATURE };
    expect(verifyWebhook(SPEC_SECRET, ok, '{"test": 2432232315}', { now })).toBe(false);
    expect(verifyWebhook(SPEC_SECRET, { ...ok, 'webhook-id': 'msg_other' }, SPEC_BODY, { now })).toBe(false);
    expect(verifyWebhook(SPEC_SECRET, { ...ok, 'webhook-timestamp': String(SPEC_TS + 1) }, SPEC_BODY, { now })).toBe(false);
    expect(verifyWebhook(generateWebhookSecret(), ok, SPEC_BODY, { now })).toBe(false);
    expect(verifyWebhook(SPEC_SECRET, { ...ok, 'webhook-signature': SPEC_SIGNATURE.replace('v1,', 'v2,') }, SPEC_BODY, { now })).toBe(false);
    expect(verifyWebhook(SPEC_SECRET, { ...ok, 'webhook-signature': '' }, SPEC_BODY, { now })).toBe(false);
    expect(verifyWebhook(SPEC_SECRET, { ...ok, 'webhook-timestamp': 'soon' }, SPEC_BODY, { now })).toBe(false);
  });

  it('accepts any one of several space-separated signatures (a receiver during a secret rotation)', () => {
    const headers = { 'webhook-id': SPEC_ID, 'webhook-timestamp': String(SPEC_TS), 'webhook-signature': `v1,AAAA ${SPEC_SIGNATURE}` };
    expect(verifyWebhook(SPEC_SECRET, headers, Buffer.from(SPEC_BODY), { now: () => SPEC_TS * 1000 })).toBe(true);
  });

  it('reads headers case-insensitively and as arrays, as node delivers them', () => {
    const headers = { 'Webhook-Id': [SPEC_ID], 'WEBHOOK-TIMESTAMP': String(SPEC_TS), 'webhook-signature': [SPEC_SIGNATURE] };
    expect(verifyWebhook(SPEC_SECRET, headers, SPEC_BODY, { now: () => SPEC_TS * 1000 })).toBe(true);
  });

  it('generates secrets of 32 random bytes behind the whsec_ prefix', () => {
    const a = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(webhookSigningKey(a)).toHaveLength(32);
    expect(generateWebhookSecret()).not.toBe(a);
  });
});
