-- The outbox relay's bookkeeping: work slices, parked (poison) rows, and indexes for the relay, the pruner and
-- the admin view.

-- A stable hash of the repository, computed once per row: the relay's slice is this hash modulo
-- events.relayPartitions, so every event of one repository falls in the same slice whatever that setting is.
ALTER TABLE outbox ADD COLUMN repository_hash integer GENERATED ALWAYS AS (hashtext(repository)) STORED;

-- A row the bus refused for itself events.maxAttempts times is parked: the relay no longer offers it, an admin
-- sees it (and may requeue it), and lading_outbox_parked alerts. `attempts` counts refusals, never bus outages.
ALTER TABLE outbox ADD COLUMN parked_at timestamptz;

-- The relay reads pending rows slice by slice in (repository, sequence) order.
DROP INDEX outbox_unpublished_idx;
CREATE INDEX outbox_pending_idx ON outbox (repository, sequence) WHERE published_at IS NULL AND parked_at IS NULL;
-- The oldest pending row, for the lag metric.
CREATE INDEX outbox_pending_age_idx ON outbox (created_at) WHERE published_at IS NULL AND parked_at IS NULL;
-- The pruner deletes published rows oldest first.
CREATE INDEX outbox_published_idx ON outbox (published_at) WHERE published_at IS NOT NULL;
-- The admin view of parked rows.
CREATE INDEX outbox_parked_idx ON outbox (parked_at) WHERE parked_at IS NOT NULL;
