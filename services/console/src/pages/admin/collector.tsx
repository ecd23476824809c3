/** The garbage collector: a dry run (what a collection would delete now, and why) and, after confirming, a run. */
import { useState } from 'preact/hooks';
import { ConfirmDialog } from '../../components/confirm-dialog';
import { DataTable } from '../../components/data-table';
import { LoadStatus } from '../../components/status';
import { useLoad } from '../../components/use-load';
import { PrincipalName } from '../../components/principal-name';
import { formatBytes, formatTime } from '../../format';
import { useSession } from '../../session';

/** `GET /admin/v1/gc/dry-run`. */
export interface GcPlan {
  generatedAt: string;
  items: Array<{ kind: string; action: string; target: string; size?: number; reason: string }>;
  totals: { tags: number; manifests: number; blobs: number; bytes: number; uploads: number; kept: number; later: number };
}

/** `GET /admin/v1/gc/status` (services/gc gc-admin-api.ts). */
export interface GcStatus {
  queues: {
    blobReviews: { size: number; due: number; overdue: number };
    manifestReviews: { size: number; due: number; overdue: number };
    tombstones: { blob: number; upload: number; failing: number };
    pins: number;
  };
  counters: { deleted: Record<string, number>; bytesFreed: number; storageErrors: number; errors: number };
  collecting: boolean;
  collectionQueued: boolean;
  runs: Array<{
    startedAt: string;
    finishedAt: string | null;
    requestedBy: string | null;
    outcome: 'running' | 'done' | 'failed';
    deleted?: Record<string, number>;
    bytesFreed?: number;
    error?: string;
  }>;
}

/** "3 manifests, 7 blobs" of the counts that are not 0, or "nothing". */
function deletedText(deleted: Record<string, number> | undefined): string {
  const parts = Object.entries(deleted ?? {})
    .filter(([, n]) => n > 0)
    .map(([what, n]) => `${n} ${what}`);
  return parts.length ? parts.join(', ') : 'nothing';
}

function Status({ status }: { status: GcStatus }) {
  const { queues, counters } = status;
  const reviews = [
    { what: 'Blob reviews', ...queues.blobReviews },
    { what: 'Manifest reviews', ...queues.manifestReviews },
  ];
  return (
    <>
      <p>
        {status.collecting ? 'A collection is running' : 'No collection is running'}
        {status.collectionQueued ? '; another waits for it.' : '.'} Objects waiting for deletion: {queues.tombstones.blob} blobs and {queues.tombstones.upload} uploads
        {queues.tombstones.failing ? ` (${queues.tombstones.failing} failed before and are retried)` : ''}; {queues.pins} blobs pinned by uploads under way.
      </p>
      <DataTable
        label="Queued reviews"
        rows={reviews}
        rowKey={(r) => r.what}
        columns={[
          { header: 'Queue', cell: (r) => r.what },
          { header: 'Queued', cell: (r) => r.size },
          { header: 'Due now', cell: (r) => r.due },
          { header: 'Overdue', cell: (r) => r.overdue },
        ]}
      />
      <p>
        Since the registry started, the collector deleted {deletedText(counters.deleted)} and freed {formatBytes(counters.bytesFreed)}
        {counters.storageErrors ? `; ${counters.storageErrors} object deletions failed and are retried` : ''}
        {counters.errors ? `; ${counters.errors} steps failed and were retried (see the registry's log)` : ''}.
      </p>
      <h3>Collections asked for</h3>
      <DataTable
        label="Collections asked for, newest first"
        rows={status.runs}
        rowKey={(r) => r.startedAt}
        empty="None since the registry started."
        columns={[
          { header: 'Started', cell: (r) => formatTime(r.startedAt) },
          { header: 'Asked by', cell: (r) => <PrincipalName name={r.requestedBy} /> },
          { header: 'Outcome', cell: (r) => (r.outcome === 'failed' ? `failed: ${r.error ?? 'see the log'}` : r.outcome) },
          { header: 'Deleted', cell: (r) => (r.outcome === 'done' ? deletedText(r.deleted) : '—') },
          { header: 'Freed', cell: (r) => (r.bytesFreed === undefined ? '—' : formatBytes(r.bytesFreed)) },
          { header: 'Finished', cell: (r) => (r.finishedAt ? formatTime(r.finishedAt) : '—') },
        ]}
      />
    </>
  );
}

/** The collector section. */
export function CollectorSection() {
  const { api } = useSession();
  const status = useLoad((signal) => api.json<GcStatus>('/admin/v1/gc/status', { signal }), []);
  const [all, setAll] = useState(false);
  const plan = useLoad((signal) => api.json<GcPlan>(`/admin/v1/gc/dry-run${all ? '?all=1' : ''}`, { signal }), [all]);
  const [collecting, setCollecting] = useState(false);
  const [result, setResult] = useState<string | null>(null);
  return (
    <>
      <p role="status" class="notice">
        {result}
      </p>
      <section aria-labelledby="status-heading">
        <h2 id="status-heading">Status</h2>
        <LoadStatus state={status} what="the collector's status" />
        {status.data ? <Status status={status.data} /> : null}
        <button type="button" class="secondary small" onClick={status.reload}>
          Refresh the status
        </button>
      </section>
      <section aria-labelledby="plan-heading">
        <h2 id="plan-heading">Dry run</h2>
        <div class="field check">
          <input id="gc-all" type="checkbox" checked={all} onChange={(e) => setAll(e.currentTarget.checked)} />
          <label for="gc-all">Include reviews that are not due yet</label>
        </div>
        <LoadStatus state={plan} what="the dry run" />
        {plan.data ? (
          <>
            <p>
              As of {formatTime(plan.data.generatedAt)}, a collection would delete {plan.data.totals.tags} tags, {plan.data.totals.manifests} manifests, {plan.data.totals.blobs} blobs (
              {formatBytes(plan.data.totals.bytes)}) and {plan.data.totals.uploads} abandoned uploads; {plan.data.totals.later} wait for a later review.
            </p>
            <DataTable
              rows={plan.data.items.slice(0, 500)}
              rowKey={(_item, i) => i}
              empty="Nothing to collect."
              columns={[
                {
                  header: 'What',
                  cell: (item) => (
                    <>
                      {item.kind} <code>{item.target}</code>
                    </>
                  ),
                },
                { header: 'Action', cell: (item) => item.action },
                { header: 'Size', cell: (item) => (item.size === undefined ? '—' : formatBytes(item.size)) },
                { header: 'Why', cell: (item) => item.reason },
              ]}
            />
            <button type="button" class="danger" onClick={() => setCollecting(true)}>
              Collect now
            </button>
          </>
        ) : null}
      </section>
      {collecting ? (
        <ConfirmDialog
          title="Collect garbage now?"
          confirmLabel="Collect now"
          onClose={() => setCollecting(false)}
          onConfirm={async () => {
            const done = await api.json<{ deleted?: Record<string, number>; bytesFreed?: number; storageErrors?: number }>('/admin/v1/gc/collect', { method: 'POST' });
            const deleted = Object.entries(done.deleted ?? {})
              .filter(([, n]) => n > 0)
              .map(([what, n]) => `${n} ${what}`);
            setResult(
              `The collection finished: ${deleted.length ? `deleted ${deleted.join(', ')}` : 'nothing to delete'}, ${formatBytes(done.bytesFreed ?? 0)} freed` +
                (done.storageErrors ? `; ${done.storageErrors} storage errors (see the registry's log)` : '') +
                '.',
            );
            plan.reload();
            status.reload();
          }}
        >
          <p>What the dry run lists as "delete" is deleted for good.</p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}
