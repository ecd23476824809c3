/**
 * Immutable tags: the per-namespace rules (0013_tag_rules.sql) and how a tag is matched against them.
 *
 * A rule is a glob over a tag name: `*` matches any run of characters (none included), `?` exactly one, everything
 * else itself. Tags have no `/`, so nothing more is needed, and no library's path semantics can surprise anyone.
 * A tag is immutable in a namespace when one of its patterns matches the tag and none of its exceptions does; a
 * repository follows the rules of every namespace that covers it (`team` and `team/ci` both bind `team/ci/app`),
 * because a rule only ever adds protection.
 */
import type { SqlExecutor } from './database';

/** A namespace's immutable-tag rules. */
export interface TagRules {
  /** The namespace's prefix. */
  namespace: string;
  /** Globs of the tags that may not move or be deleted once they exist. */
  immutableTags: string[];
  /** Globs of the tags the patterns would match but that stay mutable (`latest`). */
  immutableTagExceptions: string[];
}

/** The rule that makes a tag immutable, for the refusal's message. */
export interface ImmutableTagMatch {
  namespace: string;
  pattern: string;
}

/** The longest glob a rule may have, and the most patterns a namespace may list. */
export const TAG_GLOB_MAX_LENGTH = 128;
export const TAG_RULES_MAX_PATTERNS = 64;

/** What a tag glob may contain: a tag's characters, `*` and `?`. */
const TAG_GLOB = /^[A-Za-z0-9_.*?-]+$/;

/** True when `glob` is a valid tag glob (a tag's characters plus `*` and `?`, at most 128 of them). */
export function isValidTagGlob(glob: string): boolean {
  return glob.length <= TAG_GLOB_MAX_LENGTH && TAG_GLOB.test(glob);
}

/**
 * True when `tag` matches `glob` (`*` any run, `?` one character). Iterative with one backtrack point, so a pattern
 * of many stars costs O(tag × glob) at worst, never exponential time.
 */
export function tagGlobMatches(glob: string, tag: string): boolean {
  let g = 0;
  let t = 0;
  let starG = -1;
  let starT = 0;
  while (t < tag.length) {
    if (g < glob.length && (glob[g] === '?' || glob[g] === tag[t])) {
      g++;
      t++;
    } else if (g < glob.length && glob[g] === '*') {
      starG = g++;
      starT = t;
    } else if (starG >= 0) {
      g = starG + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (g < glob.length && glob[g] === '*') g++;
  return g === glob.length;
}

/** The first rule among `rules` that makes `tag` immutable, or null when the tag may move and be deleted. */
export function immutableTagRule(rules: readonly TagRules[], tag: string): ImmutableTagMatch | null {
  for (const rule of rules) {
    if (rule.immutableTagExceptions.some((e) => tagGlobMatches(e, tag))) continue;
    const pattern = rule.immutableTags.find((p) => tagGlobMatches(p, tag));
    if (pattern !== undefined) return { namespace: rule.namespace, pattern };
  }
  return null;
}

/**
 * The immutable-tag rules of the namespaces covering a repository (only those that have any), shortest prefix
 * first. Read inside a write's transaction, the rows stay locked `FOR SHARE` until it ends: a rule change
 * (`setTagRules`) waits for the write and binds every write after it. `lock: false` reads without locking (reports).
 */
export async function tagRulesFor(tx: SqlExecutor, repository: string, lock = true): Promise<TagRules[]> {
  const r = await tx.query<TagRules>(
    `SELECT prefix AS namespace, immutable_tags AS "immutableTags", immutable_tag_exceptions AS "immutableTagExceptions"
       FROM namespaces
      WHERE ($1 = prefix OR left($1, length(prefix) + 1) = prefix || '/') AND cardinality(immutable_tags) > 0
      ORDER BY length(prefix), prefix${lock ? ' FOR SHARE' : ''}`,
    [repository],
  );
  return r.rows;
}

/**
 * Sets a namespace's immutable-tag rules: each list given replaces the stored one, a null leaves it (one statement,
 * so two admins changing one list each both keep their change); false when there is no such namespace.
 */
export async function setTagRules(db: SqlExecutor, prefix: string, immutableTags: readonly string[] | null, immutableTagExceptions: readonly string[] | null): Promise<boolean> {
  const r = await db.query(
    `UPDATE namespaces SET immutable_tags = coalesce($2::text[], immutable_tags), immutable_tag_exceptions = coalesce($3::text[], immutable_tag_exceptions)
      WHERE prefix = $1`,
    [prefix, immutableTags ? [...immutableTags] : null, immutableTagExceptions ? [...immutableTagExceptions] : null],
  );
  return r.rowCount > 0;
}
