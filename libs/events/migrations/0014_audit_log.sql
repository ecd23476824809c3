-- The audit trail (docs/audit.md): the queryable store of the io.lading.audit.* events (logins, admin changes,
-- pull batches). Each row is written in the same transaction as its event's outbox row, so the log and the bus
-- tell the same story. A pull batch is one event and one row per (actor, repository) it counted.
--
-- Bounded by pruning, not partitions: the outbox pruner deletes rows older than `audit.retention` in batches of a
-- thousand (oldest first, by the time index), every `events.pruneInterval`. Partitions would make the drop cheaper,
-- but PGlite and Postgres then need different DDL, and at the volumes an audit trail has (logins, admin changes
-- and one row per pulled repository and principal per window) batched deletes keep up.

-- The outbox sequence of audit events (their outbox rows have the pseudo-repository '_audit', which no repository
-- name can be: a name component starts with a letter or a digit).
CREATE SEQUENCE audit_event_seq;

CREATE TABLE audit_log (
  id          bigserial PRIMARY KEY,
  event_id    uuid NOT NULL,
  at          timestamptz NOT NULL,
  type        text NOT NULL,
  -- The principal: a user's name, robot$<name>, or NULL for anonymous (and for a failed login with a name that is
  -- not an account's: it may be a password typed into the wrong field).
  actor       text,
  repository  text,
  record      jsonb NOT NULL
);

-- Pages are keyset by (at, id); filters by actor, repository and type read their own index in the same order.
CREATE INDEX audit_log_at_idx ON audit_log (at, id);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, at, id);
CREATE INDEX audit_log_repository_idx ON audit_log (repository, at, id) WHERE repository IS NOT NULL;
CREATE INDEX audit_log_type_idx ON audit_log (type, at, id);
