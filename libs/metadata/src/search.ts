/**
 * Search's read model: the metadata of each pushed manifest (written in the push's transaction) and the ranked,
 * access-filtered search over repository names, tags and that metadata (migrations 0010_search.sql and
 * 0018_search_documents.sql: one search document per repository, kept by triggers).
 *
 * Invariants: a query never opens a manifest payload or a blob (everything it matches was extracted at push); the
 * caller's access is a condition of the query itself (`pullableNamespacesCondition` over each repository's search
 * document), so a page is always full and `total` counts only what the caller may pull.
 */
import { pullableNamespacesCondition } from './auth-store';
import type { SqlExecutor } from './database';
import { listedRepository } from './repository-deletions';

/** What is recorded about one manifest for search. */
export interface ImageMetadata {
  mediaType: string;
  artifactType: string | null;
  title: string | null;
  description: string | null;
  source: string | null;
  /** The image config's labels (string values). */
  labels: Record<string, string>;
  /** `os/architecture[/variant]` of the image, or of an index's children. */
  platforms: string[];
}

/**
 * Records a manifest's metadata in the caller's transaction (the push's): once per manifest, a second push of the
 * same manifest changes nothing (the first one's pushed time stays).
 */
export async function recordImageMetadata(tx: SqlExecutor, repositoryId: number, digest: string, m: ImageMetadata): Promise<void> {
  await tx.query(
    `INSERT INTO image_metadata (repository_id, manifest_digest, media_type, artifact_type, title, description, source, labels, platforms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::text[]) ON CONFLICT (repository_id, manifest_digest) DO NOTHING`,
    [repositoryId, digest, m.mediaType, m.artifactType, m.title, m.description, m.source, JSON.stringify(m.labels), m.platforms],
  );
}

/**
 * Who is searching: everyone sees everything when auth is off; otherwise a principal (type null: anonymous) named by
 * its token subject, as grants name it (a user's name; `robot$<name>` for a robot).
 */
export type SearchViewer = { kind: 'everyone' } | { kind: 'principal'; type: 'user' | 'robot' | null; name: string | null; groups?: readonly string[] };

/** Filters on what a repository holds: a repository passes when one of its manifests matches all of them. */
export interface SearchFilters {
  /** Repositories named `namespace` or under `namespace/`. */
  namespace?: string;
  mediaType?: string;
  artifactType?: string;
  /** `os/architecture[/variant]`. */
  platform?: string;
  /** Config labels that must all be present with these values. */
  labels?: Record<string, string>;
  /** Pushed at or after this time. */
  pushedSince?: Date;
}

/** One search. */
export interface SearchQuery {
  /** The term; '' lists every repository the viewer may pull (by name). */
  text: string;
  viewer: SearchViewer;
  filters?: SearchFilters;
  limit: number;
  offset: number;
  /** Tags listed per result (the matching ones first, then the most recently moved). */
  tagsPerResult?: number;
  /** `SEARCH_MATCH_LIMIT` unless given (specs make it small). */
  matchLimit?: number;
}

/** How a repository matched, best first. */
export const MATCH_KINDS = ['exact', 'prefix', 'substring', 'similar', 'tag', 'metadata'] as const;

/** How a repository matched: its name exactly, by prefix, as a substring, by similarity; or through a tag or metadata. */
export type MatchKind = (typeof MATCH_KINDS)[number];

/** One repository found. */
export interface SearchHit {
  repository: string;
  match: MatchKind;
  /**
   * The trigram word similarity of the term to the name (0 to 1; 0 for tag and metadata matches): the order within
   * the substring and similar kinds.
   */
  similarity: number;
  /** From the most recently pushed manifest that has a description (else the most recent one). */
  title: string | null;
  description: string | null;
  source: string | null;
  /** When the repository's most recent manifest was pushed. */
  pushedAt: Date | null;
  tags: string[];
}

/** A page of results and how many there are in all. */
export interface SearchPage {
  total: number;
  /**
   * Whether the search stopped reading before it had every match: the matches found reached the page's end plus one
   * or `SEARCH_MATCH_LIMIT`, whichever is larger (the later kinds of match were then not read), or the substring,
   * similar, tag or metadata matches reached `SEARCH_MATCH_LIMIT` (without a term: whether the count reached its
   * cap). Then `total` is a lower bound, counting the repositories found, still past the page when there is a next
   * one; a narrower term finds the others. Otherwise `total` is exact.
   */
  capped: boolean;
  hits: SearchHit[];
}

/**
 * How many repositories one search keeps from each of the substring, similar, tag and metadata kinds of match; and
 * how many matches it reads at least before it stops (when the page ends further, up to the page's end plus one). A
 * term as common as a word in every description or name would otherwise visit every row: capped, a search costs
 * about the same whatever the term.
 */
export const SEARCH_MATCH_LIMIT = 500;

/**
 * How many matching rows are read for each repository kept: matches are read first, on their own (so that the
 * planner takes the trigram index, not a walk of the whole table in join order), then filtered by access.
 */
const SCAN_FACTOR = 4;

/** Without a term, how many repositories are counted at most, in match limits (2,000): a page reads only its own. */
const BROWSE_COUNT_FACTOR = 4;

/** The viewer's identity-provider groups, whose grants count as its own (`pullableNamespacesCondition`). */
export function viewerGroups(viewer: SearchViewer): string[] {
  return viewer.kind === 'principal' && viewer.groups ? [...viewer.groups] : [];
}

/** The term as a LIKE pattern's literal part (`\`, `%` and `_` escaped). */
function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * Searches repositories by name, tag and image metadata, ranked in tiers: an exact name (or last path segment)
 * first, by name; then a last path segment starting with the term, by that segment then name, then a name starting
 * with it, by name; then a name containing it, then a similar name (trigram word similarity), each by similarity then
 * name; then repositories found by a tag (containing the term), then by their metadata (title, description, source
 * or a label containing it), by name. Only repositories the viewer may pull (and that pass the filters) are counted
 * and listed.
 *
 * Each tier is read only while the repositories found so far are fewer than `enough`: the page's end plus one, or
 * `SEARCH_MATCH_LIMIT` if larger. The exact and prefix tiers are read in index order (the name index, and migration
 * 0021's index on the last path segment) and stop at `enough`; the substring and similar tiers read up to
 * `SEARCH_MATCH_LIMIT` repositories off the name's trigram index (in the heap's order, stable while the table is)
 * and rank those; tag and metadata matches are read up to `SEARCH_MATCH_LIMIT` repositories each, out of at most four
 * times as many matching rows. Each tier's set is a prefix of a fixed order or a fixed set, and a later tier ranks
 * after it whether or not it was read, so page n + 1 continues page n. Past `enough` (or a tag or metadata cap) `total`
 * is a lower bound and `capped` says so; a common term costs the first tiers' index reads, not every match.
 *
 * Every match is an index scan: ILIKE and `<%` use trigram GIN indexes, on the tags (0010_search.sql) and on each
 * repository's search document (its name, and its images' texts and labels: 0018_search_documents.sql). Fuzzy
 * matching is for names only: word similarity over every tag and description costs a computation per row (a
 * seconds-long scan at 100,000 descriptions), where a substring is one index probe. Access and the namespace filter
 * apply to the rows of each tier as they are read. Access is one array overlap per repository: the document's
 * covering namespaces against the viewer's, read once per tier (`pullableNamespacesCondition`).
 */
export async function searchRepositories(db: SqlExecutor, q: SearchQuery): Promise<SearchPage> {
  const text = q.text;
  const lower = text.toLowerCase();
  const f = q.filters ?? {};
  const manifestFilter = f.mediaType !== undefined || f.artifactType !== undefined || f.platform !== undefined || f.labels !== undefined || f.pushedSince !== undefined;
  const params: unknown[] = [
    text, // $1
    lower, // $2
    likeLiteral(lower), // $3
    q.viewer.kind === 'everyone', // $4
    q.viewer.kind === 'principal' ? q.viewer.type : null, // $5
    q.viewer.kind === 'principal' ? q.viewer.name : null, // $6
    f.namespace ?? null, // $7
    manifestFilter, // $8
    f.mediaType ?? null, // $9
    f.artifactType ?? null, // $10
    f.platform ?? null, // $11
    f.labels ? JSON.stringify(f.labels) : null, // $12
    f.pushedSince ?? null, // $13
    q.limit, // $14
    q.offset, // $15
    q.tagsPerResult ?? 5, // $16
  ];
  /** Whether the viewer may pull the repository of search document `d`, listed (not being deleted), and it is in the namespace filter. */
  const admitted = (d: string) => `${listedRepository(`${d}.name`)} AND ($4::boolean OR ${pullableNamespacesCondition(`${d}.namespaces`, '$5', '$6', '$18')})
          AND ($7::text IS NULL OR $7::text = ANY(${d}.namespaces))`;
  /** Whether the repository `id` holds a manifest that passes every manifest filter. */
  const passesFilters = (id: string) => `(NOT $8::boolean OR EXISTS (
                SELECT 1 FROM image_metadata f WHERE f.repository_id = ${id}
                   AND ($9::text IS NULL OR f.media_type = $9::text)
                   AND ($10::text IS NULL OR f.artifact_type = $10::text)
                   AND ($11::text IS NULL OR f.platforms @> ARRAY[$11::text])
                   AND ($12::jsonb IS NULL OR f.labels @> $12::jsonb)
                   AND ($13::timestamptz IS NULL OR f.pushed_at >= $13::timestamptz)))`;
  // Without a term, a page is read in name order off the name index and the count stops at BROWSE_COUNT_FACTOR
  // times the match limit. With one, the kinds of match are read tier by tier, best first, each only while the
  // repositories found so far are fewer than `enough` ($19: the page's end plus one, or the match limit if larger);
  // the exact and prefix tiers in index order up to `enough`, the others up to the match limit. The rows of the
  // substring and similar tiers are read in CTEs of their own, which are planned for every row (a bitmap scan of the
  // trigram index) and read only as far as the LIMIT over them asks: with the LIMIT in the same query, the planner
  // takes a sequential scan that computes word similarity row after row. Every repository has its search document
  // (0018_search_documents.sql): its name, namespaces and metadata text.
  const lastSegment = (d: string) => `split_part(${d}.name, '/', -1)`;
  /** The exact tier: the name, or its last path segment (or, for a term with a `/`, its trailing segments). */
  const exact = (d: string) => `(${d}.name = $2 OR ${lastSegment(d)} = $2 OR (strpos($2, '/') > 0 AND ${d}.name LIKE '%/' || $3))`;
  /** The prefix tier (exact ones aside): the last path segment, or else the name, starts with the term. */
  const prefixed = (d: string) => `(${lastSegment(d)} LIKE $3 || '%' OR ${d}.name LIKE $3 || '%')`;
  /**
   * Whether the repository was found by name (so not by tag or metadata): its name contains the term, or it is among
   * the similar names read (word similarity again for each tag or metadata row cost 8 ms over the 2,000 rows a
   * common metadata term reads, on PGlite on a loaded box).
   */
  const named = (d: string, also = '') =>
    `(${d}.name LIKE '%' || $3 || '%' OR ${d}.repository_id = ANY(ARRAY(SELECT id FROM similar_names${also})))`;
  /** Whether fewer than `enough` repositories were found up to tier `tier` (its running count): the next gate. */
  const open = (tier: string) => `(SELECT n FROM ${tier}_found) < $19`;
  /** The running count after the tier `tier`, from the one after the tier before it (none for the first). */
  const found = (tier: string, before?: string) =>
    `${tier}_found AS MATERIALIZED (SELECT ${before ? `(SELECT n FROM ${before}_found) + ` : ''}(SELECT count(*) FROM ${tier}) AS n)`;
  const pageSql =
    text === ''
      ? `page AS (
           SELECT d.repository_id AS id, d.name, 0 AS tier, 0::real AS rank, ''::text COLLATE "C" AS key,
                  (SELECT count(*) FROM (SELECT 1 FROM search_documents c WHERE ${admitted('c')} AND ${passesFilters('c.repository_id')}
                                          LIMIT $17 * ${BROWSE_COUNT_FACTOR}) counted) AS total
             FROM search_documents d
            WHERE $2::text = '' AND ${admitted('d')} AND ${passesFilters('d.repository_id')}
            ORDER BY d.name LIMIT $14 OFFSET $15
         )`
      : `exact_names AS MATERIALIZED (
           SELECT d.repository_id AS id, d.name, 0 AS tier, 0::real AS rank, ''::text COLLATE "C" AS key
             FROM search_documents d WHERE ${exact('d')} AND ${admitted('d')} AND ${passesFilters('d.repository_id')}
            ORDER BY d.name LIMIT $19
         ), ${found('exact_names')}, segment_prefixed AS MATERIALIZED (
           SELECT d.repository_id AS id, d.name, 1 AS tier, 1::real AS rank, ${lastSegment('d')} AS key
             FROM search_documents d
            WHERE ${open('exact_names')} AND ${lastSegment('d')} LIKE $3 || '%' AND NOT ${exact('d')}
              AND ${admitted('d')} AND ${passesFilters('d.repository_id')}
            ORDER BY ${lastSegment('d')}, d.name LIMIT $19
         ), ${found('segment_prefixed', 'exact_names')}, name_prefixed AS MATERIALIZED (
           SELECT d.repository_id AS id, d.name, 1 AS tier, 0::real AS rank, ''::text COLLATE "C" AS key
             FROM search_documents d
            WHERE ${open('segment_prefixed')} AND d.name LIKE $3 || '%' AND NOT ${lastSegment('d')} LIKE $3 || '%'
              AND NOT ${exact('d')} AND ${admitted('d')} AND ${passesFilters('d.repository_id')}
            ORDER BY d.name LIMIT $19
         ), ${found('name_prefixed', 'segment_prefixed')}, containing_rows AS MATERIALIZED (
           SELECT d.repository_id AS id, d.name FROM search_documents d
            WHERE ${open('name_prefixed')} AND d.name LIKE '%' || $3 || '%'
              AND NOT ${exact('d')} AND NOT ${prefixed('d')} AND ${admitted('d')} AND ${passesFilters('d.repository_id')}
         ), containing AS MATERIALIZED (
           SELECT c.id, c.name, 2 AS tier, word_similarity($2, c.name) AS rank, ''::text COLLATE "C" AS key
             FROM (SELECT * FROM containing_rows LIMIT $17) c
         ), ${found('containing', 'name_prefixed')}, similar_rows AS MATERIALIZED (
           SELECT d.repository_id AS id, d.name FROM search_documents d
            WHERE ${open('containing')} AND $2 <% d.name
              AND d.name NOT LIKE '%' || $3 || '%' AND ${admitted('d')} AND ${passesFilters('d.repository_id')}
         ), similar_names AS MATERIALIZED (
           SELECT c.id, c.name, 3 AS tier, word_similarity($2, c.name) AS rank, ''::text COLLATE "C" AS key
             FROM (SELECT * FROM similar_rows LIMIT $17) c
         ), ${found('similar_names', 'containing')}, tag_rows AS MATERIALIZED (
           SELECT t.repository_id AS id FROM tags t
            WHERE ${open('similar_names')}
              AND t.name ILIKE '%' || $3 || '%' LIMIT $17 * ${SCAN_FACTOR}
         ), tagged AS MATERIALIZED (
           SELECT d.repository_id AS id, d.name, 4 AS tier, 0::real AS rank, ''::text COLLATE "C" AS key FROM search_documents d
            WHERE d.repository_id = ANY(ARRAY(SELECT DISTINCT id FROM tag_rows)) AND NOT ${named('d')}
              AND ${admitted('d')} AND ${passesFilters('d.repository_id')} LIMIT $17
         ), ${found('tagged', 'similar_names')}, metadata_rows AS MATERIALIZED (
           SELECT d.repository_id, d.name, d.namespaces FROM search_documents d
            WHERE ${open('tagged')}
              AND d.metadata_text ILIKE '%' || $3 || '%' LIMIT $17 * ${SCAN_FACTOR}
         ), described AS MATERIALIZED (
           SELECT d.repository_id AS id, d.name, 5 AS tier, 0::real AS rank, ''::text COLLATE "C" AS key FROM metadata_rows d
            WHERE NOT ${named('d', ' UNION ALL SELECT id FROM tagged')}
              AND ${admitted('d')} AND ${passesFilters('d.repository_id')} LIMIT $17
         ), ${found('described', 'tagged')}, hits AS (
           SELECT * FROM exact_names UNION ALL SELECT * FROM segment_prefixed UNION ALL SELECT * FROM name_prefixed
           UNION ALL SELECT * FROM containing UNION ALL SELECT * FROM similar_names UNION ALL SELECT * FROM tagged
           UNION ALL SELECT * FROM described
         ), page AS (
           SELECT h.id, h.name, h.tier, h.rank, h.key, (SELECT n FROM described_found) AS total
             FROM hits h ORDER BY h.tier, h.rank DESC, h.key, h.name LIMIT $14 OFFSET $15
         )`;
  const cappedSql =
    text === ''
      ? `p.total >= $17 * ${BROWSE_COUNT_FACTOR}`
      : `p.total >= $19 OR (SELECT count(*) FROM containing) >= $17 OR (SELECT count(*) FROM similar_names) >= $17
              OR (SELECT count(*) FROM tagged) >= $17 OR (SELECT count(*) FROM described) >= $17
              OR (SELECT count(*) FROM tag_rows) >= $17 * ${SCAN_FACTOR} OR (SELECT count(*) FROM metadata_rows) >= $17 * ${SCAN_FACTOR}`;
  const matchLimit = q.matchLimit ?? SEARCH_MATCH_LIMIT;
  const r = await db.query<{
    repository: string;
    tier: number;
    sim: number;
    total: number;
    capped: boolean;
    title: string | null;
    description: string | null;
    source: string | null;
    pushedAt: Date | null;
    tags: string[] | null;
  }>(
    `WITH ${pageSql}
     SELECT p.name AS repository, p.tier,
            CASE WHEN $1 <> '' AND p.tier < 4 THEN word_similarity($2, p.name) ELSE 0 END AS sim, p.total,
            ${cappedSql} AS capped,
            d.title, d.description, d.source, latest.pushed_at AS "pushedAt",
            ARRAY(SELECT t.name FROM tags t WHERE t.repository_id = p.id
                   ORDER BY ($1 <> '' AND t.name ILIKE '%' || $3 || '%') DESC, t.updated_at DESC, t.name LIMIT $16) AS tags
       FROM page p
       LEFT JOIN LATERAL (SELECT max(pushed_at) AS pushed_at FROM image_metadata WHERE repository_id = p.id) latest ON true
       LEFT JOIN LATERAL (SELECT title, description, source FROM image_metadata WHERE repository_id = p.id
                           ORDER BY description IS NULL, pushed_at DESC LIMIT 1) d ON true
      ORDER BY p.tier, p.rank DESC, p.key, p.name`,
    // $17, $18, and with a term $19 (`enough`)
    [...params, matchLimit, viewerGroups(q.viewer), ...(text === '' ? [] : [Math.max(q.offset + q.limit + 1, matchLimit)])],
  );
  if (r.rows.length === 0 && q.offset > 0) return { ...(await searchRepositories(db, { ...q, offset: 0, limit: 1, tagsPerResult: 0 })), hits: [] };
  const total = r.rows.length > 0 ? Number(r.rows[0].total) : 0;
  return {
    total,
    capped: r.rows.length > 0 && Boolean(r.rows[0].capped),
    hits: r.rows.map((row) => ({
      repository: row.repository,
      match: MATCH_KINDS[row.tier],
      similarity: Number(row.sim),
      title: row.title,
      description: row.description,
      source: row.source,
      pushedAt: row.pushedAt ? new Date(row.pushedAt) : null,
      tags: row.tags ?? [],
    })),
  };
}
