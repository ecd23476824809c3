-- Online garbage collection: what the collector needs besides the review queues of 0001.
--
-- Invariant kept with these tables: metadata is deleted before the stored object. Deleting a blob row writes a
-- tombstone in the same transaction, and the object is deleted afterwards (retried from the tombstone) only
-- while no blob row and no live pin names its digest.

-- Stored objects whose metadata is gone and whose bytes are still to be deleted: 'blob:<digest>' (a blob's
-- object) or 'upload:<id>' (an expired upload session's data).
CREATE TABLE gc_tombstones (
  key          text PRIMARY KEY,
  kind         text NOT NULL CHECK (kind IN ('blob', 'upload')),
  target       text NOT NULL,
  size         bigint NOT NULL DEFAULT 0,
  created_at   timestamptz NOT NULL DEFAULT now(),
  retry_after  timestamptz NOT NULL DEFAULT now(),
  attempts     integer NOT NULL DEFAULT 0,
  last_error   text
);
CREATE INDEX gc_tombstones_due_idx ON gc_tombstones (retry_after);

-- An upload that is about to commit an object pins its digest first (committed before the object is written)
-- and unpins it in the transaction that records the blob row. The collector never deletes a pinned object.
CREATE TABLE gc_blob_pins (
  id          uuid PRIMARY KEY,
  digest      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gc_blob_pins_digest_idx ON gc_blob_pins (digest);
CREATE INDEX gc_blob_pins_created_idx ON gc_blob_pins (created_at);

-- How often a review was put off because its rows were busy (backoff grows with it).
ALTER TABLE gc_blob_review_queue ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE gc_manifest_review_queue ADD COLUMN attempts integer NOT NULL DEFAULT 0;
