/**
 * Docker token-auth scopes: `repository:<name>:<actions>` and `registry:catalog:*`, parsed from what clients ask
 * for, and intersected with what a principal is allowed (asking for too much is never an error: the token just
 * grants less).
 */

import { OciError } from '@lading/oci';

/** The actions a repository grant can carry. `*` is admin: all of them. */
export const REPOSITORY_ACTIONS = ['pull', 'push', 'delete', '*'] as const;

/** One entry of a token's `access` claim. */
export interface Access {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}

/**
 * Parses one scope string. Repository names may contain `:`-free paths; the actions are the part after the last
 * colon. Unknown types and malformed scopes are dropped (null), as Distribution does.
 */
export function parseScope(scope: string): Access | null {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return null;
  const type = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const actions = scope
    .slice(last + 1)
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  if (!name || actions.length === 0) return null;
  if (type === 'repository') return { type, name, actions: [...new Set(actions)] };
  if (type === 'registry' && name === 'catalog') return { type, name, actions: actions.includes('*') ? ['*'] : [] };
  return null;
}

/** What every character of a scope is: printable ASCII (a repository name, `:`, actions), never a space. */
const SCOPE_TEXT = /^[\x21-\x7e]+$/;

/**
 * Parses every scope a client asked for (`scope` may repeat, and one value may hold several space-separated).
 * A scope of an unknown shape is dropped, but one holding a character no scope can hold (a control character such
 * as U+0000, anything beyond ASCII) is refused with a 400: no name could match it, and it must not reach a query.
 */
export function parseScopes(values: string[]): Access[] {
  const merged = new Map<string, Access>();
  for (const value of values) {
    for (const part of value.split(' ').filter(Boolean)) {
      if (!SCOPE_TEXT.test(part)) {
        throw new OciError('UNSUPPORTED', 'a scope must be printable ASCII (type:name:actions)', { scope: part.slice(0, 200) }, { status: 400 });
      }
      const access = parseScope(part);
      if (!access) continue;
      const key = `${access.type}:${access.name}`;
      const existing = merged.get(key);
      merged.set(key, existing ? { ...access, actions: [...new Set([...existing.actions, ...access.actions])] } : access);
    }
  }
  return [...merged.values()];
}

/** True when an access list grants `action` on a repository (`*` grants everything). */
export function grants(access: Access[], type: Access['type'], name: string, action: string): boolean {
  return access.some((a) => a.type === type && a.name === name && (a.actions.includes(action) || a.actions.includes('*')));
}

/** The `scope` string of an access entry, as a WWW-Authenticate challenge names it. */
export function formatScope(access: Access): string {
  return `${access.type}:${access.name}:${access.actions.join(',')}`;
}
