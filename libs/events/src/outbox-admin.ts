/**
 * The admin view of parked outbox rows (an express router the admin API mounts under `/admin/v1/outbox`): list them,
 * and requeue one once its cause is fixed (a larger broker limit, say). A requeued row is published after the
 * later events of its repository that went ahead while it was parked: consumers see it out of sequence order.
 */
import express, { Router } from 'express';
import type { Database } from '@lading/metadata';
import { OciError } from '@lading/oci';
import type { AdminChange } from './audit';

/** What the outbox admin router needs. */
export interface OutboxAdminDeps {
  db: Database;
  /** Called after a row was requeued (wakes the relay). */
  onRequeued?: () => void;
  /** Runs the requeue with its audit record in one transaction (the admin API's); a plain transaction when omitted. */
  change?: AdminChange;
}

/** A parked row as the admin API shows it. */
export interface ParkedRowView {
  id: string;
  repository: string;
  sequence: number;
  type: string;
  attempts: number;
  lastError: string | null;
  createdAt: string;
  parkedAt: string;
  event: unknown;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_LIST = 1000;

/** Creates the router: `GET /parked[?limit=n]` and `POST /parked/:id/requeue`. */
export function createOutboxAdminRouter(deps: OutboxAdminDeps): Router {
  const change: AdminChange = deps.change ?? ((_req, _res, _status, work) => deps.db.transaction(work));
  const router = express.Router();

  router.get('/parked', async (req, res) => {
    const raw = req.query.limit;
    const limit = raw === undefined ? 100 : Number(raw);
    if (!Number.isInteger(limit) || limit < 1) throw new OciError('UNSUPPORTED', 'limit must be a positive integer', undefined, { status: 400 });
    const rows = await deps.db.query<{
      id: string;
      repository: string;
      sequence: number;
      type: string;
      attempts: number;
      last_error: string | null;
      created_at: Date;
      parked_at: Date;
      event: unknown;
    }>(
      `SELECT id::text AS id, repository, sequence, type, attempts, last_error, created_at, parked_at, event
         FROM outbox WHERE parked_at IS NOT NULL ORDER BY parked_at, repository, sequence LIMIT $1`,
      [Math.min(limit, MAX_LIST)],
    );
    const parked: ParkedRowView[] = rows.rows.map((r) => ({
      id: r.id,
      repository: r.repository,
      sequence: Number(r.sequence),
      type: r.type,
      attempts: r.attempts,
      lastError: r.last_error,
      createdAt: new Date(r.created_at).toISOString(),
      parkedAt: new Date(r.parked_at).toISOString(),
      event: typeof r.event === 'string' ? JSON.parse(r.event) : r.event,
    }));
    res.json({ parked });
  });

  router.post('/parked/:id/requeue', async (req, res) => {
    const id = String(req.params.id);
    const notParked = () => new OciError('NOT_FOUND', 'no parked outbox row with that id', { id: id.slice(0, 64) });
    if (!UUID.test(id)) throw notParked();
    const answer = await change(req, res, 200, async (tx) => {
      const r = await tx.query<{ id: string }>(
        `UPDATE outbox SET parked_at = NULL, attempts = 0, last_error = NULL WHERE id = $1 AND parked_at IS NOT NULL RETURNING id::text AS id`,
        [id],
      );
      if (r.rows.length === 0) throw notParked();
      return { id: r.rows[0].id, requeued: true };
    });
    deps.onRequeued?.();
    res.json(answer);
  });

  return router;
}
