/**
 * The repositories: the search form with its filters, and either the ranked search results (when a term or a
 * filter is given) or every repository by name. The query lives in the URL, so results can be bookmarked and the
 * back button returns to them; pages come from the server.
 */
import { useState } from 'preact/hooks';
import { lastOfNext, queryString } from '../api';
import { PageHeading } from '../components/page-heading';
import { ErrorMessage, Loading } from '../components/status';
import { useLoad } from '../components/use-load';
import { formatTime } from '../format';
import { href, navigate } from '../router';
import { useSession } from '../session';
import type { RepositoryPage, SearchResponse } from '../types';

/** The search parameters the form sets (`GET /api/v1/search`). */
export const SEARCH_FIELDS = ['q', 'namespace', 'platform', 'mediaType', 'artifactType', 'label', 'pushedSince'] as const;

/** How many repositories a page shows. */
export const PAGE_SIZE = 25;

/** Whether the URL asks for a search (a term or any filter) rather than the plain list. */
export function isSearch(query: URLSearchParams): boolean {
  return SEARCH_FIELDS.some((field) => (query.get(field) ?? '') !== '');
}

/** How a search hit matched (libs/metadata's MATCH_KINDS), in words. */
const MATCH_WORDS: Record<string, string> = {
  exact: 'its name',
  prefix: 'the start of its name',
  substring: 'part of its name',
  similar: 'a name like it',
  tag: 'a tag',
  metadata: 'its description or labels',
};

function SearchForm({ query }: { query: URLSearchParams }) {
  const initial = Object.fromEntries(SEARCH_FIELDS.map((f) => [f, query.get(f) ?? ''])) as Record<(typeof SEARCH_FIELDS)[number], string>;
  const [values, setValues] = useState(initial);
  const set = (field: keyof typeof values) => (event: Event) => setValues({ ...values, [field]: (event.currentTarget as HTMLInputElement).value });
  const filtersOpen = SEARCH_FIELDS.some((f) => f !== 'q' && initial[f] !== '');
  const submit = (event: Event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const field of SEARCH_FIELDS) if (values[field].trim()) next.set(field, values[field].trim());
    navigate(href.home(next));
  };
  const field = (name: keyof typeof values, label: string, hint: string, type = 'text') => (
    <div class="field">
      <label for={`search-${name}`}>{label}</label>
      <input id={`search-${name}`} name={name} type={type} value={values[name]} onInput={set(name)} aria-describedby={`search-${name}-hint`} />
      <span class="hint" id={`search-${name}-hint`}>
        {hint}
      </span>
    </div>
  );
  return (
    <form role="search" class="search" onSubmit={submit}>
      <div class="search-row">
        <label for="search-q" class="visually-hidden">
          Search repositories
        </label>
        <input id="search-q" name="q" type="search" placeholder="Search by name, tag or description" value={values.q} onInput={set('q')} />
        <button type="submit">Search</button>
      </div>
      <details open={filtersOpen}>
        <summary>Filters</summary>
        <div class="filters">
          {field('namespace', 'Namespace', 'e.g. team')}
          {field('platform', 'Platform', 'os/architecture, e.g. linux/arm64')}
          {field('mediaType', 'Manifest media type', 'e.g. application/vnd.oci.image.index.v1+json')}
          {field('artifactType', 'Artifact type', 'e.g. application/vnd.cncf.notary.signature')}
          {field('label', 'Label', 'key=value')}
          {field('pushedSince', 'Pushed since', 'a date', 'date')}
        </div>
      </details>
    </form>
  );
}

function SearchResults({ query }: { query: URLSearchParams }) {
  const { api } = useSession();
  const page = Math.max(1, Number(query.get('page')) || 1);
  const params = Object.fromEntries(SEARCH_FIELDS.map((f) => [f, query.get(f)]));
  const result = useLoad((signal) => api.json<SearchResponse>(`/api/v1/search${queryString({ ...params, n: PAGE_SIZE, page })}`, { signal }), [query.toString()]);
  if (result.error) return <ErrorMessage error={result.error} />;
  if (!result.data) return <Loading what="the search results" />;
  const { results, total, pages, capped } = result.data;
  const pageHref = (n: number) => {
    const next = new URLSearchParams(query);
    next.set('page', String(n));
    return href.home(next);
  };
  return (
    <section aria-labelledby="results-heading">
      <h2 id="results-heading">
        {total === 0 ? 'No repositories match' : `${total} ${total === 1 ? 'repository matches' : 'repositories match'}`}
      </h2>
      {capped ? <p class="hint">The term is very common: not every match was counted. Narrow it to see the rest.</p> : null}
      <ul class="cards">
        {results.map((hit) => (
          <li key={hit.repository} class="card">
            <h3>
              <a href={href.repository(hit.repository)}>{hit.repository}</a>
            </h3>
            {hit.title || hit.description ? <p>{hit.title ?? hit.description}</p> : null}
            <p class="meta">
              Matched {MATCH_WORDS[hit.match] ?? hit.match} · last pushed {formatTime(hit.pushedAt)}
            </p>
            {hit.tags.length ? (
              <p class="tags">
                Tags:{' '}
                {hit.tags.slice(0, 10).map((tag, i) => (
                  <span key={tag}>
                    {i ? ', ' : ''}
                    <a href={href.image(hit.repository, tag)}>{tag}</a>
                  </span>
                ))}
                {hit.tags.length > 10 ? ` and ${hit.tags.length - 10} more` : ''}
              </p>
            ) : null}
          </li>
        ))}
      </ul>
      {pages > 1 ? (
        <nav aria-label="Search result pages" class="pager">
          {page > 1 ? <a href={pageHref(page - 1)}>Previous page</a> : null}
          <span>
            Page {page} of {pages}
          </span>
          {page < pages ? <a href={pageHref(page + 1)}>Next page</a> : null}
        </nav>
      ) : null}
    </section>
  );
}

function RepositoryList({ last }: { last: string | null }) {
  const { api } = useSession();
  const result = useLoad((signal) => api.json<RepositoryPage>(`/api/v1/repositories${queryString({ n: PAGE_SIZE, last })}`, { signal }), [last]);
  if (result.error) return <ErrorMessage error={result.error} />;
  if (!result.data) return <Loading what="the repositories" />;
  const { repositories, next } = result.data;
  return (
    <section aria-labelledby="list-heading">
      <h2 id="list-heading">{last ? `Repositories after ${last}` : 'All repositories'}</h2>
      {repositories.length === 0 ? (
        <p>No repositories{last ? ' after this one' : ' you may see yet'}.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Repository</th>
                <th scope="col">Tags</th>
                <th scope="col">Last pushed</th>
              </tr>
            </thead>
            <tbody>
              {repositories.map((r) => (
                <tr key={r.name}>
                  <th scope="row">
                    <a href={href.repository(r.name)}>{r.name}</a>
                  </th>
                  <td>{r.tagCount}</td>
                  <td>{formatTime(r.lastPushedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav aria-label="Repository pages" class="pager">
        {last ? <a href={href.home()}>First page</a> : null}
        {next ? <a href={href.home(new URLSearchParams({ last: lastOfNext(next) }))}>Next page</a> : null}
      </nav>
    </section>
  );
}

/** The home page: search, filters, and the repositories. */
export function HomePage({ query }: { query: URLSearchParams }) {
  return (
    <>
      <PageHeading>Repositories</PageHeading>
      <SearchForm query={query} />
      {isSearch(query) ? <SearchResults query={query} /> : <RepositoryList last={query.get('last')} />}
    </>
  );
}
