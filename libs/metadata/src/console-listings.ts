/**
 * The web console's listings: the repositories a viewer may pull, and one repository's tags with what the console
 * shows of each (the manifest's media type, size with what it references, platforms, when it was pushed and last
 * pulled). Read-only; pages by name (`last`, exclusive), as tags/list and the catalog do.
 *
 * Invariant: the viewer's access is a condition of the query (`pullableRepositoryCondition`, the rule search and
 * the token service apply), so a page is always full and never names a repository the viewer may not pull.
 */
import { pullableRepositoryCondition } from './auth-store';
import type { SqlExecutor } from './database';
import { listedRepository } from './repository-deletions';
import { type SearchViewer, viewerGroups } from './search';

/** One repository of the console's list. */
export interface ConsoleRepository {
  name: string;
  tagCount: number;
  /** When a tag of it last moved or a manifest was last pushed to it; null for a repository with neither. */
  lastPushedAt: Date | null;
}

/** One tag of the console's list. */
export interface ConsoleTag {
  tag: string;
  digest: string;
  mediaType: string;
  /**
   * The manifest's size plus the distinct blobs it references (an index: its children's manifests and their blobs),
   * those the registry holds; a pull-through cache's blob not fetched yet is not counted.
   */
  size: number;
  /** `os/architecture[/variant]` of the image, or of an index's children (as recorded at push). */
  platforms: string[];
  /** When the tag was last set. */
  pushedAt: Date;
  /** When the manifest was last pulled, where pulls are recorded (pull-through caches); else null. */
  lastPulledAt: Date | null;
}

/** The viewer's four query parameters: everyone?, principal type, principal name, its groups. */
function viewerParams(viewer: SearchViewer): [boolean, string | null, string | null, string[]] {
  return viewer.kind === 'everyone' ? [true, null, null, []] : [false, viewer.type, viewer.name, viewerGroups(viewer)];
}

/** Up to `limit` repositories the viewer may pull, by name, after `last`. */
export async function listConsoleRepositories(db: SqlExecutor, viewer: SearchViewer, last: string | null, limit: number): Promise<ConsoleRepository[]> {
  const r = await db.query<{ name: string; tagCount: string | number; lastPushedAt: Date | null }>(
    `SELECT r.name,
            (SELECT count(*) FROM tags t WHERE t.repository_id = r.id) AS "tagCount",
            greatest((SELECT max(t.updated_at) FROM tags t WHERE t.repository_id = r.id),
                     (SELECT max(m.created_at) FROM manifests m WHERE m.repository_id = r.id)) AS "lastPushedAt"
       FROM repositories r
      WHERE ($1::text IS NULL OR r.name > $1::text) AND ${listedRepository('r.name')}
        AND ($3::boolean OR ${pullableRepositoryCondition('r.name', '$4', '$5', '$6')})
      ORDER BY r.name
      LIMIT $2`,
    [last, limit, ...viewerParams(viewer)],
  );
  return r.rows.map((row) => ({ name: row.name, tagCount: Number(row.tagCount), lastPushedAt: row.lastPushedAt }));
}

/** The id of a repository the viewer may pull, or null when there is none by that name or the viewer may not. */
export async function pullableRepositoryId(db: SqlExecutor, viewer: SearchViewer, name: string): Promise<number | null> {
  const r = await db.query<{ id: string | number }>(
    `SELECT r.id FROM repositories r WHERE r.name = $1 AND ($2::boolean OR ${pullableRepositoryCondition('r.name', '$3', '$4', '$5')})`,
    [name, ...viewerParams(viewer)],
  );
  return r.rows[0] ? Number(r.rows[0].id) : null;
}

/** Whether the viewer may pull each of `names` (for filtering the live feed), by name. */
export async function pullableRepositories(db: SqlExecutor, viewer: SearchViewer, names: string[]): Promise<Set<string>> {
  if (viewer.kind === 'everyone') return new Set(names);
  const r = await db.query<{ name: string }>(
    `SELECT n.name FROM unnest($1::text[]) AS n(name) WHERE ${pullableRepositoryCondition('n.name', '$2', '$3', '$4')}`,
    [names, viewer.type, viewer.name, viewerGroups(viewer)],
  );
  return new Set(r.rows.map((row) => row.name));
}

/** Up to `limit` tags of a repository, by name, after `last`, with what the console shows of each. */
export async function listConsoleTags(db: SqlExecutor, repositoryId: number, last: string | null, limit: number): Promise<ConsoleTag[]> {
  const r = await db.query<{
    tag: string;
    digest: string;
    mediaType: string;
    size: string | number;
    platforms: string[] | null;
    pushedAt: Date;
    lastPulledAt: Date | null;
  }>(
    `SELECT t.name AS tag, m.digest, m.media_type AS "mediaType", m.last_pulled_at AS "lastPulledAt", t.updated_at AS "pushedAt",
            coalesce(im.platforms, '{}') AS platforms,
            m.size
              + coalesce((SELECT sum(cm.size) FROM manifest_children c
                            JOIN manifests cm ON cm.repository_id = c.repository_id AND cm.digest = c.child_digest
                           WHERE c.repository_id = m.repository_id AND c.parent_digest = m.digest), 0)
              + coalesce((SELECT sum(b.size) FROM blobs b WHERE b.digest IN (
                            SELECT br.blob_digest FROM manifest_blob_references br
                             WHERE br.repository_id = m.repository_id
                               AND (br.manifest_digest = m.digest OR br.manifest_digest IN (
                                     SELECT c.child_digest FROM manifest_children c WHERE c.repository_id = m.repository_id AND c.parent_digest = m.digest)))), 0)
              AS size
       FROM tags t
       JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
       LEFT JOIN image_metadata im ON im.repository_id = m.repository_id AND im.manifest_digest = m.digest
      WHERE t.repository_id = $1 AND ($2::text IS NULL OR t.name > $2::text)
      ORDER BY t.name
      LIMIT $3`,
    [repositoryId, last, limit],
  );
  return r.rows.map((row) => ({ ...row, size: Number(row.size), platforms: row.platforms ?? [] }));
}
