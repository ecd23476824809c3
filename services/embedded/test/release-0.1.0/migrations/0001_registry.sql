-- The registry's metadata: repositories, blobs, manifests and their references, tags, upload sessions,
-- the event outbox and the garbage collector's review queues. Postgres is the source of truth.

CREATE TABLE repositories (
  id          bigserial PRIMARY KEY,
  name        text COLLATE "C" NOT NULL UNIQUE,
  -- Per-repository event counter: each event takes the next value in the transaction of its change.
  event_seq   bigint NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per stored object; the object's key is derived from the digest.
CREATE TABLE blobs (
  digest      text PRIMARY KEY,
  size        bigint NOT NULL CHECK (size >= 0),
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Which repositories may serve which blobs (uploads and mounts create links; DELETE removes them).
CREATE TABLE repository_blobs (
  repository_id  bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  blob_digest    text NOT NULL REFERENCES blobs (digest) ON DELETE RESTRICT,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, blob_digest)
);
CREATE INDEX repository_blobs_blob_idx ON repository_blobs (blob_digest);

CREATE TABLE manifests (
  repository_id   bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  digest          text NOT NULL,
  media_type      text NOT NULL,
  artifact_type   text,
  size            bigint NOT NULL,
  payload         bytea NOT NULL,
  subject_digest  text,
  annotations     jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, digest)
);
CREATE INDEX manifests_subject_idx ON manifests (repository_id, subject_digest) WHERE subject_digest IS NOT NULL;

-- Config and layers of image manifests. A blob row cannot be deleted while any manifest references it.
CREATE TABLE manifest_blob_references (
  repository_id    bigint NOT NULL,
  manifest_digest  text NOT NULL,
  blob_digest      text NOT NULL REFERENCES blobs (digest) ON DELETE RESTRICT,
  PRIMARY KEY (repository_id, manifest_digest, blob_digest),
  FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_blob_references_blob_idx ON manifest_blob_references (blob_digest);

-- Children of indexes (manifest lists).
CREATE TABLE manifest_children (
  repository_id  bigint NOT NULL,
  parent_digest  text NOT NULL,
  child_digest   text NOT NULL,
  PRIMARY KEY (repository_id, parent_digest, child_digest),
  FOREIGN KEY (repository_id, parent_digest) REFERENCES manifests (repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_children_child_idx ON manifest_children (repository_id, child_digest);

CREATE TABLE tags (
  repository_id    bigint NOT NULL,
  name             text COLLATE "C" NOT NULL,
  manifest_digest  text NOT NULL,
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, name),
  FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX tags_manifest_idx ON tags (repository_id, manifest_digest);

-- Upload sessions: their state lives here and in storage, never in one process's memory.
CREATE TABLE uploads (
  id             uuid PRIMARY KEY,
  repository_id  bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  byte_offset    bigint NOT NULL DEFAULT 0,
  algorithm      text NOT NULL DEFAULT 'sha256',
  -- The resumable hash state after byte_offset bytes (null before the first byte).
  hash_state     bytea,
  -- A writer holds the session until this time; a second concurrent writer is refused.
  lease_until    timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX uploads_updated_idx ON uploads (updated_at);

-- The transactional outbox: each change writes its event here in the same transaction.
CREATE TABLE outbox (
  id            uuid PRIMARY KEY,
  repository    text NOT NULL,
  sequence      bigint NOT NULL,
  type          text NOT NULL,
  event         jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  published_at  timestamptz,
  attempts      integer NOT NULL DEFAULT 0,
  last_error    text
);
CREATE INDEX outbox_unpublished_idx ON outbox (created_at) WHERE published_at IS NULL;

-- Garbage-collection review queues, filled in the same transaction as every unlink.
CREATE TABLE gc_blob_review_queue (
  digest        text PRIMARY KEY,
  review_after  timestamptz NOT NULL,
  reason        text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gc_blob_review_due_idx ON gc_blob_review_queue (review_after);

CREATE TABLE gc_manifest_review_queue (
  repository_id  bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  digest         text NOT NULL,
  review_after   timestamptz NOT NULL,
  reason         text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, digest)
);
CREATE INDEX gc_manifest_review_due_idx ON gc_manifest_review_queue (review_after);
