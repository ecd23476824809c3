-- When each manifest was last pulled, for the eviction of pull-through caches (`proxies[].evictAfter`).
--
-- Written in batches by the process that served the pulls (one statement per flush, never one per pull), so it can
-- lag a pull by the flush interval. NULL until the manifest's first recorded pull; eviction then counts from
-- created_at (when the cache fetched it).

ALTER TABLE manifests ADD COLUMN last_pulled_at timestamptz;
