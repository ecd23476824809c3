/** The garbage collector: a dry run (what a collection would delete now, and why) and, after confirming, a run. */
import { useState } from 'preact/hooks';
import { ConfirmDialog } from '../../components/confirm-dialog';
import { DataTable } from '../../components/data-table';
import { LoadStatus } from '../../components/status';
import { useLoad } from '../../components/use-load';
import { formatBytes, formatTime } from '../../format';
import { useSession } from '../../session';

/** `GET /admin/v1/gc/dry-run`. */
export interface GcPlan {
  generatedAt: string;
  items: Array<{ kind: string; action: string; target: string; size?: number; reason: string }>;
  totals: { tags: number; manifests: number; blobs: number; bytes: number; uploads: number; kept: number; later: number };
}

/** The collector section. */
export function CollectorSection() {
  const { api } = useSession();
  const [all, setAll] = useState(false);
  const plan = useLoad((signal) => api.json<GcPlan>(`/admin/v1/gc/dry-run${all ? '?all=1' : ''}`, { signal }), [all]);
  const [collecting, setCollecting] = useState(false);
  const [result, setResult] = useState<string | null>(null);
  return (
    <>
      <p role="status" class="notice">
        {result}
      </p>
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
          }}
        >
          <p>What the dry run lists as "delete" is deleted for good.</p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}
