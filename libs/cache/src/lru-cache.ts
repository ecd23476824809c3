/**
 * A least-recently-used map bounded by the bytes its entries weigh or by how many there are, with an optional expiry
 * per entry. The caches of the pull path (manifests by digest, tag answers, blob descriptors) are bounded by bytes;
 * the gateway's verified tokens and rate-limit buckets by count. Every process bounds what it holds, and stale-able
 * answers (tags) carry a short time to live as a safety net behind event invalidation.
 */

/** The bounds of a cache: by bytes, by entries, or both (whichever is reached first evicts). */
export type LruCacheBounds =
  | {
      /** The most bytes the entries may weigh together; the least recently used go first. 0 disables the cache. */
      maxBytes: number;
      /** The most entries held; the least recently used go first. 0 disables the cache. */
      maxEntries?: number;
    }
  | { maxBytes?: number; maxEntries: number };

/** Settings of a cache. */
export type LruCacheOptions = LruCacheBounds & {
  /** How long an entry is served after it was set; unset means until evicted or deleted. */
  ttlMs?: number;
  /** The clock (tests control it). */
  now?: () => number;
};

interface Entry<V> {
  value: V;
  bytes: number;
  expiresAt: number;
}

/** Bytes an entry costs besides its value's own weight (key, map slot, entry object). */
const ENTRY_OVERHEAD = 64;

/** A byte- or count-bounded LRU map; `get` refreshes recency, expired entries are never returned. */
export class LruCache<K, V> {
  private readonly entries = new Map<K, Entry<V>>();
  private bytes = 0;
  private readonly now: () => number;
  private readonly maxBytes: number;
  private readonly maxEntries: number;

  constructor(private readonly options: LruCacheOptions) {
    this.now = options.now ?? Date.now;
    this.maxBytes = options.maxBytes ?? Infinity;
    this.maxEntries = options.maxEntries ?? Infinity;
  }

  /** The value under `key`, or undefined when absent or expired. */
  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== 0 && entry.expiresAt <= this.now()) {
      this.remove(key, entry);
      return undefined;
    }
    // Re-inserting moves the key to the young end of the map's insertion order.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /**
   * Stores `value` weighing `bytes` (plus a fixed overhead; a cache bounded by count only may leave it out); a value
   * larger than the whole cache is not kept.
   */
  set(key: K, value: V, bytes = 0): void {
    const old = this.entries.get(key);
    if (old !== undefined) this.remove(key, old);
    const weight = bytes + ENTRY_OVERHEAD;
    if (weight > this.maxBytes || this.maxEntries < 1) return;
    this.entries.set(key, { value, bytes: weight, expiresAt: this.options.ttlMs ? this.now() + this.options.ttlMs : 0 });
    this.bytes += weight;
    while (this.bytes > this.maxBytes || this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.remove(oldest.value, this.entries.get(oldest.value)!);
    }
  }

  /** Drops `key`; true when it was there. */
  delete(key: K): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined) return false;
    this.remove(key, entry);
    return true;
  }

  /** Drops every entry whose key and value match `predicate` (a scan: for rare invalidations only). */
  deleteWhere(predicate: (key: K, value: V) => boolean): number {
    let dropped = 0;
    for (const [key, entry] of this.entries) {
      if (predicate(key, entry.value)) {
        this.remove(key, entry);
        dropped++;
      }
    }
    return dropped;
  }

  /** Drops everything. */
  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  /** How many entries are held (expired ones included until touched). */
  get size(): number {
    return this.entries.size;
  }

  /** How many bytes the held entries weigh. */
  get weight(): number {
    return this.bytes;
  }

  private remove(key: K, entry: Entry<V>): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }
}
