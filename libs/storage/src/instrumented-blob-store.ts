/**
 * Tracing and metrics around a blob driver, as a decorator (the driver itself stays free of them): every call
 * becomes a `storage.<action>` span (attributes: driver, bucket, key prefix, bytes) when it runs inside a trace,
 * and is timed into `registry_storage_action_seconds{driver,action}` whether traced or not.
 */
import { SpanKind, context, trace } from '@opentelemetry/api';
import { TRACER_NAME, recordFailure } from '@lading/telemetry';
import type { RegistryMetrics } from '@lading/telemetry';
import type { BlobStore, PendingObject } from './blob-store';

/** The metrics a storage decorator records into. */
export type StorageMetrics = Pick<RegistryMetrics, 'storageActionSeconds'>;

/** What to instrument a store with. */
export interface StorageInstrumentation {
  /** The bucket (S3) or root the store works in, for span attributes. */
  bucket?: string;
  /** Where to record call durations; without it only spans are made. */
  metrics?: StorageMetrics;
}

const ACTIONS = ['writeUpload', 'commitUpload', 'deleteUpload', 'stat', 'read', 'delete', 'ping', 'presignGet', 'writeObject'] as const;

/** The coarse part of a key, safe as an attribute: `uploads`, `blobs/sha256`. */
export function keyPrefix(key: string): string {
  return key.startsWith('uploads/') || !key.includes('/') ? key.split('/')[0] : key.split('/').slice(0, 2).join('/');
}

/** Attributes known from the call's arguments. */
function argumentAttributes(action: string, args: unknown[]): Record<string, string | number> {
  switch (action) {
    case 'writeUpload':
      return { 'storage.key_prefix': 'uploads', 'storage.offset': Number(args[1]) };
    case 'commitUpload':
      return { 'storage.key_prefix': keyPrefix(String(args[1])), 'storage.bytes': Number(args[2]) };
    case 'deleteUpload':
      return { 'storage.key_prefix': 'uploads' };
    case 'read': {
      const range = args[1] as { start: number; end: number } | undefined;
      return { 'storage.key_prefix': keyPrefix(String(args[0])), ...(range ? { 'storage.bytes': range.end - range.start + 1 } : {}) };
    }
    case 'stat':
    case 'delete':
    case 'writeObject':
    case 'commitObject':
    case 'presignGet':
      return { 'storage.key_prefix': keyPrefix(String(args[0])) };
    default:
      return {};
  }
}

/** Attributes known from the call's result. */
function resultAttributes(action: string, result: unknown): Record<string, number> {
  if (action === 'writeUpload' && typeof result === 'number') return { 'storage.bytes': result };
  if (action === 'writeObject' && result && typeof (result as { size?: unknown }).size === 'number') return { 'storage.bytes': (result as { size: number }).size };
  if (action === 'stat' && result && typeof (result as { size?: unknown }).size === 'number') return { 'storage.bytes': (result as { size: number }).size };
  return {};
}

/**
 * Wraps every method of `store` with a span (inside traces only) and a duration measurement; an object written
 * straight to its key (`writeObject`) has its commit measured too, as `commitObject`.
 */
export function instrumentBlobStore<T extends BlobStore>(store: T, options: StorageInstrumentation = {}): T {
  const driver = store.driverName;
  const tracer = trace.getTracer(TRACER_NAME);
  const measured = async <R>(action: string, args: unknown[], call: () => Promise<R>): Promise<R> => {
    const started = performance.now();
    const active = context.active();
    // Health probes and loops outside any trace would each start a trace of their own; they only get timed.
    const span = trace.getSpan(active)?.isRecording()
      ? tracer.startSpan(
          `storage.${action}`,
          { kind: SpanKind.CLIENT, attributes: { 'storage.driver': driver, ...(options.bucket ? { 'storage.bucket': options.bucket } : {}), ...argumentAttributes(action, args) } },
          active,
        )
      : undefined;
    try {
      const result = await (span ? context.with(trace.setSpan(active, span), call) : call());
      span?.setAttributes(resultAttributes(action, result));
      return result;
    } catch (err) {
      if (span) recordFailure(span, err);
      throw err;
    } finally {
      span?.end();
      options.metrics?.storageActionSeconds.record((performance.now() - started) / 1000, { driver, action });
    }
  };
  const wrapped: Record<string, unknown> = Object.create(store) as Record<string, unknown>;
  for (const action of ACTIONS) {
    const method = (store as unknown as Record<string, unknown>)[action];
    if (typeof method !== 'function') continue;
    wrapped[action] = async (...args: unknown[]) => {
      const result: unknown = await measured(action, args, () => method.apply(store, args) as Promise<unknown>);
      if (action !== 'writeObject') return result;
      const pending = result as PendingObject;
      return { size: pending.size, commit: () => measured('commitObject', args, () => pending.commit()), abort: () => pending.abort() };
    };
  }
  return wrapped as unknown as T;
}
