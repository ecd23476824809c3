-- Repositories being deleted in bounded batches (issue 23). The deletion's first transaction takes the repository
-- out of sight: its event is written, its upload sessions end, and its row is renamed to a tombstone name
-- ('~deleting/<id>', outside the repository grammar, so no request can name it and listings leave it out) with a row
-- here. Batches then delete its manifests (their tags, references and search metadata cascade) and blob links, each
-- batch its own transaction, queueing what they free for the collector's review; the last one deletes the
-- repository row, which deletes this row. Whoever runs a batch holds this row FOR UPDATE (SKIP LOCKED by the
-- others): the admin's request runs the first batches, the collector (any process) the rest, after a restart too.
CREATE TABLE repository_deletions (
  repository_id      bigint PRIMARY KEY REFERENCES repositories (id) ON DELETE CASCADE,
  -- The name it had (the tombstone row's name is '~deleting/<id>').
  name               text COLLATE "C" NOT NULL,
  requested_at       timestamptz NOT NULL DEFAULT now(),
  -- What it held when the deletion was asked for, and what the batches have done so far.
  tags               bigint NOT NULL,
  manifests          bigint NOT NULL,
  uploads            bigint NOT NULL,
  manifests_deleted  bigint NOT NULL DEFAULT 0,
  blobs_queued       bigint NOT NULL DEFAULT 0,
  batches            bigint NOT NULL DEFAULT 0
);
CREATE INDEX repository_deletions_requested_idx ON repository_deletions (requested_at);

