/**
 * The web console's listings over HTTP: `GET /api/v1/repositories` (the repositories the caller may pull, with
 * their tag counts and last push) and `GET /api/v1/repositories/<name>/tags` (a repository's tags with digest,
 * media type, size, platforms and times). Both page by name with `n` (at most `CONSOLE_MAX_PAGE_SIZE`) and `last`,
 * and answer `next` (the `last` of the next page) when there is more.
 *
 * Who asks is decided as for search (`searchViewerOf`): the listings hold only what the caller may pull, and a
 * repository the caller may not pull is NAME_UNKNOWN, as one that does not exist (its existence is not told).
 */
import type { Request } from 'express';
import type { LadingConfig } from '@lading/config';
import { parsePageRequest } from '@lading/http';
import * as meta from '@lading/metadata';
import type { Database } from '@lading/metadata';
import { errors } from '@lading/oci';
import { searchViewerOf } from './search-api';

/** The most entries one page of the console's listings holds (and what it holds when `n` is not given). */
export const CONSOLE_MAX_PAGE_SIZE = 100;

/** A page of a listing: its entries and, when there is more, the `last` of the next page. */
export interface ConsolePage<T> {
  entries: T[];
  next?: string;
}

/** What the console's listings read. */
export interface ConsoleListingDeps {
  db: Database;
  config: Pick<LadingConfig, 'auth' | 'upstreams' | 'registry'>;
}

function pageRequest(req: Request, config: ConsoleListingDeps['config']) {
  return parsePageRequest(req.query, Math.min(config.registry.maxPageSize, CONSOLE_MAX_PAGE_SIZE));
}

/** Reads one more than a page to tell whether another follows. */
function paged<T>(rows: T[], limit: number, keyOf: (row: T) => string): ConsolePage<T> {
  const entries = rows.slice(0, limit);
  return rows.length > limit && entries.length > 0 ? { entries, next: keyOf(entries[entries.length - 1]) } : { entries };
}

/** The caller's page of repositories. */
export async function consoleRepositories(deps: ConsoleListingDeps, req: Request): Promise<ConsolePage<meta.ConsoleRepository>> {
  const page = pageRequest(req, deps.config);
  if (page.limit === 0) return { entries: [] };
  const rows = await meta.listConsoleRepositories(deps.db, searchViewerOf(req, deps.config), page.last, page.limit + 1);
  return paged(rows, page.limit, (r) => r.name);
}

/** The caller's page of a repository's tags; NAME_UNKNOWN when the caller may not pull it (or it does not exist). */
export async function consoleTags(deps: ConsoleListingDeps, req: Request, repository: string): Promise<ConsolePage<meta.ConsoleTag>> {
  const page = pageRequest(req, deps.config);
  const id = await meta.pullableRepositoryId(deps.db, searchViewerOf(req, deps.config), repository);
  if (id === null) throw errors.nameUnknown(repository);
  if (page.limit === 0) return { entries: [] };
  return paged(await meta.listConsoleTags(deps.db, id, page.last, page.limit + 1), page.limit, (t) => t.tag);
}

/** The body of `GET /api/v1/repositories`. */
export function renderConsoleRepositories(page: ConsolePage<meta.ConsoleRepository>): unknown {
  return {
    repositories: page.entries.map((r) => ({ name: r.name, tagCount: r.tagCount, lastPushedAt: r.lastPushedAt?.toISOString() ?? null })),
    ...(page.next !== undefined ? { next: page.next } : {}),
  };
}

/** The body of `GET /api/v1/repositories/<name>/tags`. */
export function renderConsoleTags(repository: string, page: ConsolePage<meta.ConsoleTag>): unknown {
  return {
    name: repository,
    tags: page.entries.map((t) => ({
      tag: t.tag,
      digest: t.digest,
      mediaType: t.mediaType,
      size: t.size,
      platforms: t.platforms,
      pushedAt: t.pushedAt.toISOString(),
      lastPulledAt: t.lastPulledAt?.toISOString() ?? null,
    })),
    ...(page.next !== undefined ? { next: page.next } : {}),
  };
}
