import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { contextFromTraceparent, currentTraceparent, linkFromTraceparent, ociErrorCodeOf, recordOciErrorCode, withItemSpans, withSpan } from './spans';
import { TestTracing, startTestTracing } from '../test/test-tracing';

/** An error shaped like @lading/oci's OciError (this lib does not import the OCI lib). */
class OciError extends Error {
  constructor(readonly code: string) {
    super(code.toLowerCase());
    this.name = 'OciError';
  }
}

describe('spans', () => {
  let tracing: TestTracing;
  beforeAll(() => {
    tracing = startTestTracing();
  });
  afterAll(async () => {
    await tracing.stop();
  });
  const finished = (name: string) => tracing.spans().filter((s) => s.name === name);

  it('withSpan returns what fn returns, nests spans under the active one, and ends them', async () => {
    const result = await withSpan('parent', { 'storage.driver': 's3' }, () => withSpan('child', {}, async () => 42));
    expect(result).toBe(42);
    const [parent] = finished('parent');
    const [child] = finished('child');
    expect(child.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(parent.attributes).toEqual({ 'storage.driver': 's3' });
    expect(parent.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('withSpan records a failure: exception event, ERROR status, oci.error.code for OCI errors, and rethrows it', async () => {
    await expect(withSpan('fails-oci', {}, async () => Promise.reject(new OciError('BLOB_UNKNOWN')))).rejects.toThrow('blob_unknown');
    await expect(withSpan('fails-plain', {}, () => {
      throw new Error('disk full');
    })).rejects.toThrow('disk full');
    const [oci] = finished('fails-oci');
    const [plain] = finished('fails-plain');
    expect(oci.attributes['oci.error.code']).toBe('BLOB_UNKNOWN');
    expect(oci.status).toEqual({ code: SpanStatusCode.ERROR, message: 'blob_unknown' });
    expect(oci.events.map((e) => e.name)).toEqual(['exception']);
    expect(plain.attributes['oci.error.code']).toBeUndefined();
    expect(plain.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('ociErrorCodeOf recognises OCI errors by shape only', () => {
    expect(ociErrorCodeOf(new OciError('DENIED'))).toBe('DENIED');
    expect(ociErrorCodeOf(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBeUndefined();
    expect(ociErrorCodeOf(null)).toBeUndefined();
  });

  it('currentTraceparent is the W3C string of the active span, and contextFromTraceparent continues that trace', async () => {
    expect(currentTraceparent()).toBeUndefined();
    const stored = await withSpan('request', {}, async () => currentTraceparent());
    const [request] = finished('request');
    expect(stored).toBe(`00-${request.spanContext().traceId}-${request.spanContext().spanId}-01`);
    // A consumer, later and elsewhere, parents its span on the stored string.
    await withSpan('consume', {}, async () => undefined, { parent: stored, kind: SpanKind.CONSUMER });
    const [consume] = finished('consume');
    expect(consume.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(consume.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(consume.kind).toBe(SpanKind.CONSUMER);
    expect(trace.getSpanContext(contextFromTraceparent(stored))?.isRemote).toBe(true);
  });

  it('links a new trace to a stored traceparent, and ignores malformed ones', async () => {
    const stored = await withSpan('push', {}, async () => currentTraceparent());
    const link = linkFromTraceparent(stored, { 'lading.event.type': 'io.lading.manifest.pushed' });
    await withSpan('batch', {}, async () => undefined, { parent: contextFromTraceparent(undefined), links: link ? [link] : [] });
    const [push] = finished('push');
    const [batch] = finished('batch');
    expect(batch.spanContext().traceId).not.toBe(push.spanContext().traceId);
    expect(batch.links.map((l) => l.context.spanId)).toEqual([push.spanContext().spanId]);
    expect(linkFromTraceparent('00-zz-not-a-trace-01')).toBeUndefined();
    expect(linkFromTraceparent(undefined)).toBeUndefined();
    // A malformed parent leaves the active context as it was.
    await withSpan('outer', {}, () => withSpan('inner', {}, async () => undefined, { parent: 'garbage' }));
    expect(finished('inner')[0].parentSpanContext?.spanId).toBe(finished('outer')[0].spanContext().spanId);
  });

  it('recordOciErrorCode marks the active span', async () => {
    await withSpan('handler', {}, async () => recordOciErrorCode('NAME_UNKNOWN', context.active()));
    expect(finished('handler')[0].attributes['oci.error.code']).toBe('NAME_UNKNOWN');
  });

  it('withItemSpans puts one span per item of a batch into that item\'s own trace, failed together with the batch', async () => {
    const first = await withSpan('push-1', {}, async () => currentTraceparent());
    const second = await withSpan('push-2', {}, async () => currentTraceparent());
    const items = [
      { traceparent: first, attributes: { 'lading.event.id': 'a' } },
      { traceparent: second, attributes: { 'lading.event.id': 'b' } },
    ];
    const sent = await withSpan('relay-batch', {}, () => withItemSpans('outbox.publish', items, async () => 'sent'));
    expect(sent).toBe('sent');
    await expect(withItemSpans('outbox.publish.failed', items, () => Promise.reject(new Error('bus down')))).rejects.toThrow('bus down');
    const [push1] = finished('push-1');
    const [push2] = finished('push-2');
    const published = finished('outbox.publish');
    expect(published.map((s) => [s.spanContext().traceId, s.parentSpanContext?.spanId, s.attributes['lading.event.id'], s.kind])).toEqual([
      [push1.spanContext().traceId, push1.spanContext().spanId, 'a', SpanKind.PRODUCER],
      [push2.spanContext().traceId, push2.spanContext().spanId, 'b', SpanKind.PRODUCER],
    ]);
    expect(finished('outbox.publish.failed').map((s) => s.status.code)).toEqual([SpanStatusCode.ERROR, SpanStatusCode.ERROR]);
  });
});
