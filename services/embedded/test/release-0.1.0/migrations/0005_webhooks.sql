-- Webhook subscriptions and their deliveries. Deliveries are a queue in Postgres: enqueued once per
-- (subscription, event) whatever the bus redelivers, claimed with FOR UPDATE SKIP LOCKED under a lease, and
-- finished exactly once: a delivery leaves 'pending' for 'delivered' or 'dead' only through the claim that holds it.

CREATE TABLE webhook_subscriptions (
  id           uuid PRIMARY KEY,
  name         text NOT NULL,
  -- A repository-name prefix: '' matches every repository, 'team' matches 'team' and 'team/...'.
  namespace    text COLLATE "C" NOT NULL DEFAULT '',
  url          text NOT NULL,
  format       text NOT NULL CHECK (format IN ('cloudevents', 'distribution')),
  -- Event types delivered; empty means every type.
  event_types  text[] NOT NULL DEFAULT '{}',
  -- The Standard Webhooks secret (whsec_<base64>), shown only at creation and on rotation.
  secret       text NOT NULL,
  enabled      boolean NOT NULL DEFAULT true,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
  id                uuid PRIMARY KEY,
  subscription_id   uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
  event_id          text NOT NULL,
  event_type        text NOT NULL,
  repository        text NOT NULL,
  -- The event as the bus carried it, as text so that a CloudEvents body keeps the record's bytes (jsonb would
  -- reorder its keys); the body is rendered from it at each attempt.
  event             text NOT NULL,
  status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
  attempts          integer NOT NULL DEFAULT 0,
  -- When a pending delivery is next due; while a worker holds it, when its lease ends.
  next_attempt_at   timestamptz NOT NULL DEFAULT now(),
  -- The claim a worker holds; only that claim may finish or reschedule the delivery.
  claim             uuid,
  first_attempt_at  timestamptz,
  last_attempt_at   timestamptz,
  last_status       integer,
  last_error        text,
  redeliveries      integer NOT NULL DEFAULT 0,
  created_at        timestamptz NOT NULL DEFAULT now(),
  finished_at       timestamptz,
  UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_subscription_idx ON webhook_deliveries (subscription_id, status, id);
