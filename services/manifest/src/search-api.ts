/**
 * Search's two HTTP shapes over one query (`searchRepositories` of libs/metadata): Docker's v1 search at
 * `/v1/search` (what `docker search` reads: `num_results`, `results[].name`, ...) and the console's JSON search at
 * `/api/v1/search` (ranked repositories with their matching tags, filters, pagination). Each parses its parameters,
 * runs the one domain operation, renders; bad input is a 400 in the OCI error envelope and runs no query.
 *
 * Who searches: with auth off, everyone sees everything; with auth on, the token subject the gateway verified (or
 * anonymous, without a token), and the query lists only what that subject may pull.
 */
import type { Request } from 'express';
import { identityOfSubject } from '@lading/access';
import type { LadingConfig } from '@lading/config';
import { principalGroupsOf, principalOf } from '@lading/http';
import type { SearchFilters, SearchHit, SearchPage, SearchViewer } from '@lading/metadata';
import { MEDIA_TYPE_GRAMMAR, OciError, assertRepositoryName, errors, isStorableText, namespaceOf } from '@lading/oci';

/** The longest search term accepted (Docker Hub's limit is of this order too). */
export const MAX_QUERY_LENGTH = 255;

/** Results per page when `n` is not given (Docker's default), and the most a page may hold (Docker's maximum). */
export const DEFAULT_PAGE_SIZE = 25;
export const MAX_PAGE_SIZE = 100;

/** The furthest page asked for: deeper than this, a term is too vague to page through (and OFFSET grows costly). */
export const MAX_PAGE = 1000;

/** How many label filters one search may carry. */
const MAX_LABEL_FILTERS = 16;

const PLATFORM = /^[a-z0-9._-]{1,32}\/[a-z0-9._-]{1,32}(?:\/[a-z0-9._-]{1,32})?$/i;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** A parsed search request. */
export interface SearchRequest {
  text: string;
  page: number;
  pageSize: number;
  filters: SearchFilters;
}

function invalid(message: string, detail: unknown): OciError {
  return new OciError('SEARCH_INVALID', message, detail);
}

/** One value of a parameter: absent → undefined; repeated → 400. */
function single(query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  throw invalid(`${name} must be given once`, { parameter: name });
}

function all(query: Record<string, unknown>, name: string): string[] {
  const value = query[name];
  if (value === undefined) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  throw invalid(`${name} is malformed`, { parameter: name });
}

function positive(query: Record<string, unknown>, name: string, fallback: number, max: number, clamp: boolean): number {
  const raw = single(query, name);
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d{1,15}$/.test(raw) || Number(raw) < 1) throw errors.paginationInvalid({ [name]: raw.slice(0, 100), reason: `${name} must be a whole number of at least 1` });
  const value = Number(raw);
  if (value <= max) return value;
  if (clamp) return max;
  throw errors.paginationInvalid({ [name]: raw.slice(0, 100), reason: `${name} must be at most ${max}` });
}

function term(query: Record<string, unknown>, required: boolean): string {
  const text = (single(query, 'q') ?? '').trim();
  if (required && text === '') throw invalid('q (the search term) is required', { parameter: 'q' });
  if (text.length > MAX_QUERY_LENGTH) throw invalid(`q must be at most ${MAX_QUERY_LENGTH} characters`, { parameter: 'q', length: text.length });
  if (!isStorableText(text)) throw invalid('q must not contain U+0000 or unpaired UTF-16 surrogates', { parameter: 'q' });
  return text;
}

/** Parses Docker's v1 search: `q` (required), `n` (page size, clamped to 100), `page` (from 1). */
export function parseDockerSearch(query: Record<string, unknown>): SearchRequest {
  return {
    text: term(query, true),
    pageSize: positive(query, 'n', DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, true),
    page: positive(query, 'page', 1, MAX_PAGE, false),
    filters: {},
  };
}

/**
 * Parses the console's search: `q` (may be empty: every repository, by name), `n`, `page`, and the filters
 * `namespace`, `mediaType`, `artifactType`, `platform` (`os/arch[/variant]`), `label` (`key=value`, repeatable, all
 * must hold) and `pushedSince` (an ISO 8601 date or date-time).
 */
export function parseConsoleSearch(query: Record<string, unknown>): SearchRequest {
  const filters: SearchFilters = {};
  const namespace = single(query, 'namespace');
  if (namespace) {
    assertRepositoryName(namespace);
    filters.namespace = namespace;
  }
  for (const name of ['mediaType', 'artifactType'] as const) {
    const value = single(query, name);
    if (value === undefined || value === '') continue;
    if (!MEDIA_TYPE_GRAMMAR.test(value)) throw invalid(`${name} is not a media type`, { parameter: name, value: value.slice(0, 100) });
    filters[name] = value;
  }
  const platform = single(query, 'platform');
  if (platform) {
    if (!PLATFORM.test(platform)) throw invalid('platform must be os/architecture[/variant]', { parameter: 'platform', value: platform.slice(0, 100) });
    filters.platform = platform;
  }
  const labels = all(query, 'label');
  if (labels.length > MAX_LABEL_FILTERS) throw invalid(`at most ${MAX_LABEL_FILTERS} label filters`, { parameter: 'label' });
  for (const label of labels) {
    const eq = label.indexOf('=');
    if (eq < 1 || label.length > 2048 || !isStorableText(label)) throw invalid('label must be key=value', { parameter: 'label', value: label.slice(0, 100) });
    filters.labels = { ...filters.labels, [label.slice(0, eq)]: label.slice(eq + 1) };
  }
  const since = single(query, 'pushedSince');
  if (since) {
    const at = DATE_TIME.test(since) ? new Date(since) : null;
    if (!at || Number.isNaN(at.getTime())) throw invalid('pushedSince must be an ISO 8601 date or date-time', { parameter: 'pushedSince', value: since.slice(0, 100) });
    filters.pushedSince = at;
  }
  return {
    text: term(query, false),
    pageSize: positive(query, 'n', DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, true),
    page: positive(query, 'page', 1, MAX_PAGE, false),
    filters,
  };
}

/** Who is searching (see the top of this file). */
export function searchViewerOf(req: Request, config: Pick<LadingConfig, 'auth' | 'upstreams'>): SearchViewer {
  if (!config.auth.enabled) return { kind: 'everyone' };
  const subject = principalOf(req, config.upstreams.secret);
  const identity = identityOfSubject(subject);
  // Grants name a robot by its subject (`robot$<name>`), as the token service looks them up.
  if (identity.type === 'anonymous') return { kind: 'principal', type: null, name: null };
  // The identity provider's groups (LDAP, OIDC) ride on the token: their grants count here as they did for its access.
  const groups = principalGroupsOf(req, config.upstreams.secret);
  return { kind: 'principal', type: identity.type, name: subject, ...(groups.length ? { groups } : {}) };
}

const pages = (total: number, pageSize: number) => Math.ceil(total / pageSize);

/** Docker Hub's v1 search body; descriptions come from the images' metadata, stars and official flags are not kept. */
export function renderDockerSearch(request: SearchRequest, found: SearchPage): unknown {
  return {
    num_results: found.total,
    num_pages: pages(found.total, request.pageSize),
    page: request.page,
    page_size: request.pageSize,
    query: request.text,
    results: found.hits.map((hit) => ({ name: hit.repository, description: hit.description ?? '', star_count: 0, is_official: false, is_automated: false })),
  };
}

function renderHit(hit: SearchHit): unknown {
  return {
    repository: hit.repository,
    namespace: namespaceOf(hit.repository),
    match: hit.match,
    similarity: Math.round(hit.similarity * 1000) / 1000,
    title: hit.title,
    description: hit.description,
    source: hit.source,
    pushedAt: hit.pushedAt?.toISOString() ?? null,
    tags: hit.tags,
  };
}

/** The console's search body: the page, how many in all, and each repository with how it matched. */
export function renderConsoleSearch(request: SearchRequest, found: SearchPage): unknown {
  return {
    query: request.text,
    page: request.page,
    pageSize: request.pageSize,
    total: found.total,
    pages: pages(found.total, request.pageSize),
    // True when a very common term matched more tags or descriptions than one search reads: narrow it.
    capped: found.capped,
    results: found.hits.map(renderHit),
  };
}
