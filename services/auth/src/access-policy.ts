/**
 * What a principal may do: the intersection of what a token request asks for and what grants allow. Asking for
 * more than allowed is never an error; the token simply carries less.
 */
import type { Access } from '@lading/access';
import * as meta from '@lading/metadata';
import type { SqlExecutor } from '@lading/metadata';
import type { Principal } from './principals';

/** The actions each role grants. */
export const ROLE_ACTIONS: Record<meta.GrantRow['role'], string[]> = {
  pull: ['pull'],
  push: ['pull', 'push'],
  delete: ['pull', 'delete'],
  admin: ['pull', 'push', 'delete', '*'],
};

/** The actions a principal holds on one repository. */
export async function repositoryActions(db: SqlExecutor, principal: Principal, repository: string): Promise<Set<string>> {
  if (principal.isAdmin) return new Set(ROLE_ACTIONS.admin);
  const rows = await meta.grantsFor(db, repository, principal.type === 'anonymous' ? null : principal.type, principal.name || null, principal.groups);
  const actions = new Set<string>();
  for (const row of rows) {
    if (row.public) actions.add('pull');
    if (row.role) for (const action of ROLE_ACTIONS[row.role]) actions.add(action);
  }
  return actions;
}

/** Grants the requested access that the principal holds, scope by scope (a refused scope keeps no actions). */
export async function allowedAccess(db: SqlExecutor, principal: Principal, requested: Access[]): Promise<Access[]> {
  const allowed: Access[] = [];
  for (const access of requested) {
    if (access.type === 'registry') {
      if (access.name === 'catalog' && principal.isAdmin) allowed.push({ type: 'registry', name: 'catalog', actions: ['*'] });
      continue;
    }
    const held = await repositoryActions(db, principal, access.name);
    const actions = held.has('*') ? access.actions : access.actions.filter((a) => held.has(a));
    // A denied scope stays in the token with no actions: it tells the gateway the client asked and was refused.
    allowed.push({ type: 'repository', name: access.name, actions });
  }
  return allowed;
}
