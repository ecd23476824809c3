/**
 * Insights: how big each namespace's tagged images are, and how many tags were pushed each day of the last 30, over
 * the repositories the visitor may see. The registry has no statistics API, so the page adds up the console's own
 * listings (`/api/v1/repositories` and each repository's tags), bounded to `INSIGHTS_REPOSITORIES` repositories and
 * `INSIGHTS_TAGS` tags each; it says so when it stopped there. Sizes are of tagged manifests and their content as
 * the listing reports them, so content shared between tags counts once per tag: a measure of what is pushed, not
 * of the bytes stored. Admins also see what each namespace stores (`GET /admin/v1/usage`: the bytes of its distinct
 * referenced blobs, the registry's own count, against its quota when it has one).
 */
import { queryString, repositoryPath } from '../api';
import { BarChart, type Bar } from '../components/bar-chart';
import { PageHeading } from '../components/page-heading';
import { ErrorMessage, LoadStatus, Loading } from '../components/status';
import { useLoad } from '../components/use-load';
import { formatBytes } from '../format';
import { isAdmin, useSession } from '../session';
import type { RepositoryPage, TagPage, TagSummary } from '../types';

/** How many repositories the page reads at most. */
export const INSIGHTS_REPOSITORIES = 200;
/** How many tags of each repository the page reads at most. */
export const INSIGHTS_TAGS = 100;

/** The days of the activity chart. */
export const ACTIVITY_DAYS = 30;

/** What the charts are computed from: each repository with its tags. */
export interface Sample {
  repositories: Array<{ name: string; tags: TagSummary[] }>;
  /** Whether a bound was reached (more repositories or tags exist). */
  partial: boolean;
}

/** The summed tag sizes per namespace (the repository name up to its last slash; "(top level)" without one), largest first. */
export function sizeByNamespace(sample: Sample): Bar[] {
  const sums = new Map<string, number>();
  for (const repo of sample.repositories) {
    const slash = repo.name.lastIndexOf('/');
    const namespace = slash < 0 ? '(top level)' : repo.name.slice(0, slash);
    sums.set(namespace, (sums.get(namespace) ?? 0) + repo.tags.reduce((sum, t) => sum + t.size, 0));
  }
  return [...sums].map(([label, value]) => ({ label, value })).sort((a, b) => b.value - a.value || a.label.localeCompare(b.label));
}

/** Tags pushed per UTC day over the `days` days up to `now`, oldest first, every day present. */
export function pushesPerDay(sample: Sample, now: Date, days = ACTIVITY_DAYS): Bar[] {
  const bars: Bar[] = [];
  const index = new Map<string, Bar>();
  for (let i = days - 1; i >= 0; i -= 1) {
    const label = new Date(now.getTime() - i * 86_400_000).toISOString().slice(0, 10);
    const bar = { label, value: 0 };
    bars.push(bar);
    index.set(label, bar);
  }
  for (const repo of sample.repositories) {
    for (const tag of repo.tags) {
      const bar = tag.pushedAt ? index.get(tag.pushedAt.slice(0, 10)) : undefined;
      if (bar) bar.value += 1;
    }
  }
  return bars;
}

/** A namespace's row of `GET /admin/v1/usage`. */
export interface NamespaceUsage {
  prefix: string;
  quotaBytes: number | null;
  bytes: number;
}

/** The quota sentence of the storage chart: each namespace with a quota, how much of it is used. */
export function quotaSummary(usage: NamespaceUsage[]): string {
  const limited = usage.filter((u) => u.quotaBytes !== null);
  if (!limited.length) return 'No namespace has a quota.';
  return `Quotas: ${limited.map((u) => `${u.prefix} uses ${u.quotaBytes ? Math.round((100 * u.bytes) / u.quotaBytes) : 100}% of ${formatBytes(u.quotaBytes ?? 0)}`).join('; ')}.`;
}

function StorageChart() {
  const { api } = useSession();
  const usage = useLoad((signal) => api.json<{ namespaces: NamespaceUsage[] }>('/admin/v1/usage', { signal }), []);
  if (usage.error) return <ErrorMessage error={usage.error}>The namespaces' storage could not be read.</ErrorMessage>;
  if (!usage.data) return <Loading what="the namespaces' storage" />;
  const namespaces = [...usage.data.namespaces].sort((a, b) => b.bytes - a.bytes || a.prefix.localeCompare(b.prefix));
  return (
    <BarChart
      id="namespace-storage"
      title="Storage per namespace"
      summary={`What each namespace stores: the bytes of the distinct blobs its manifests refer to, each counted once. ${quotaSummary(namespaces)}`}
      bars={namespaces.map((u) => ({ label: u.prefix, value: u.bytes }))}
      format={formatBytes}
      labelHeader="Namespace"
      valueHeader="Stored"
    />
  );
}

/** The insights page. */
export function InsightsPage({ now = () => new Date() }: { now?: () => Date }) {
  const { api, session } = useSession();
  const sample = useLoad(async (signal): Promise<Sample> => {
    const names: string[] = [];
    let last: string | undefined;
    let partial = false;
    do {
      const page = await api.json<RepositoryPage>(`/api/v1/repositories${queryString({ n: 100, last })}`, { signal });
      names.push(...page.repositories.map((r) => r.name));
      last = page.next;
      if (last && names.length >= INSIGHTS_REPOSITORIES) partial = true;
    } while (last && !partial);
    const repositories: Sample['repositories'] = [];
    // Four at a time: enough to be quick, few enough not to crowd the registry.
    for (let i = 0; i < names.length; i += 4) {
      const batch = names.slice(i, i + 4);
      const pages = await Promise.all(batch.map((name) => api.json<TagPage>(`/api/v1/repositories/${repositoryPath(name)}/tags${queryString({ n: INSIGHTS_TAGS })}`, { signal })));
      pages.forEach((page, j) => {
        if (page.next) partial = true;
        repositories.push({ name: batch[j], tags: page.tags });
      });
    }
    return { repositories, partial };
  }, []);
  return (
    <>
      <PageHeading>Insights</PageHeading>
      {isAdmin(session) ? <StorageChart /> : null}
      <LoadStatus state={sample} what="the repositories and their tags" />
      {sample.data ? (
        <>
          <p class="meta">
            Over the {sample.data.repositories.length} repositories you may see{sample.data.partial ? ` (the first ${INSIGHTS_REPOSITORIES}, and at most ${INSIGHTS_TAGS} tags of each)` : ''}.
          </p>
          <BarChart
            id="namespace-sizes"
            title="Size of tagged images by namespace"
            summary="The sizes of every tag's image added up per namespace; content shared between tags counts once per tag."
            bars={sizeByNamespace(sample.data)}
            format={formatBytes}
            labelHeader="Namespace"
            valueHeader="Size"
          />
          <BarChart
            id="activity"
            title={`Tags pushed per day, last ${ACTIVITY_DAYS} days`}
            summary="How many of today's tags were last pushed on each day (UTC); a tag pushed again counts on its latest day."
            bars={pushesPerDay(sample.data, now())}
            format={(v) => String(v)}
            labelHeader="Day"
            valueHeader="Tags pushed"
            orientation="vertical"
          />
        </>
      ) : null}
    </>
  );
}
