import { decideRetry, retryAfterMs } from './retry-policy';

const settings = { maxAttempts: 5, maxAgeMs: 60_000, backoffInitialMs: 1000, backoffMaxMs: 10_000 };
const at = (attempt: number, extra: Partial<Parameters<typeof decideRetry>[1]> = {}) => ({ attempt, firstAttemptAt: 0, now: 1000, status: 500, ...extra });

describe('the webhook retry policy', () => {
  it('doubles the ceiling of the jittered delay per attempt, up to the maximum', () => {
    const almostOne = () => 0.999999;
    expect(decideRetry(settings, at(1), almostOne)).toEqual({ kind: 'retry', delayMs: 999 });
    expect(decideRetry(settings, at(2), almostOne)).toEqual({ kind: 'retry', delayMs: 1999 });
    expect(decideRetry(settings, at(3), almostOne)).toEqual({ kind: 'retry', delayMs: 3999 });
    expect(decideRetry(settings, at(4), almostOne)).toEqual({ kind: 'retry', delayMs: 7999 });
    expect(decideRetry({ ...settings, maxAttempts: 100 }, at(40), almostOne)).toEqual({ kind: 'retry', delayMs: 9999 });
  });

  it('draws the delay uniformly from zero (full jitter)', () => {
    expect(decideRetry(settings, at(3), () => 0)).toEqual({ kind: 'retry', delayMs: 0 });
    expect(decideRetry(settings, at(3), () => 0.5)).toEqual({ kind: 'retry', delayMs: 2000 });
  });

  it('dead-letters after the last attempt, or once the age budget is spent', () => {
    expect(decideRetry(settings, at(5))).toEqual({ kind: 'dead' });
    expect(decideRetry(settings, at(2, { now: 60_000 }))).toEqual({ kind: 'dead' });
  });

  it('never schedules past the age budget', () => {
    expect(decideRetry(settings, at(4, { now: 59_500 }), () => 0.99)).toEqual({ kind: 'retry', delayMs: 500 });
  });

  it('honours Retry-After on 429 and 503 within the maximum backoff, and ignores it otherwise', () => {
    expect(decideRetry(settings, at(1, { status: 429, retryAfter: '5' }), () => 0)).toEqual({ kind: 'retry', delayMs: 5000 });
    expect(decideRetry(settings, at(1, { status: 503, retryAfter: '3600' }), () => 0)).toEqual({ kind: 'retry', delayMs: 10_000 });
    expect(decideRetry(settings, at(1, { status: 500, retryAfter: '5' }), () => 0)).toEqual({ kind: 'retry', delayMs: 0 });
    expect(decideRetry(settings, at(1, { status: 429, retryAfter: 'soon' }), () => 0)).toEqual({ kind: 'retry', delayMs: 0 });
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(retryAfterMs('7', 0)).toBe(7000);
    expect(retryAfterMs(new Date(12_000).toUTCString(), 2_000)).toBe(10_000);
    expect(retryAfterMs(undefined, 0)).toBeNull();
  });
});
