/**
 * Who did something, as the registry names principals: a user by name, a robot as `robot$<name>`, a CI job's
 * workload identity token as `wi$<rule>` (docs/oidc.md), nobody (anonymous) as null. Listings show the kind beside
 * the name, so that `wi$deploy` never reads as a user called "wi$deploy".
 */

/** The kinds of principal. */
export type PrincipalKind = 'user' | 'robot' | 'workload' | 'anonymous';

/** A principal taken apart: its kind, its name without the prefix, and the principal as the registry writes it. */
export interface PrincipalParts {
  kind: PrincipalKind;
  /** The name without `robot$` or `wi$` (a rule's name for a workload). */
  name: string;
  /** As the registry writes it (`robot$ci`, `wi$deploy`, `alice`); empty for anonymous. */
  principal: string;
}

const PREFIXES: ReadonlyArray<[string, PrincipalKind]> = [
  ['robot$', 'robot'],
  ['wi$', 'workload'],
];

/** Takes a principal apart (null or empty is anonymous). */
export function principalParts(principal: string | null | undefined): PrincipalParts {
  if (!principal) return { kind: 'anonymous', name: '', principal: '' };
  for (const [prefix, kind] of PREFIXES) {
    if (principal.startsWith(prefix) && principal.length > prefix.length) return { kind, name: principal.slice(prefix.length), principal };
  }
  return { kind: 'user', name: principal, principal };
}

/** The principal of an event's actor (`{type: 'robot', name: 'ci'}` is `robot$ci`; a workload's name already has `wi$`). */
export function principalOfActor(actor: { name: string | null; type: string } | null | undefined): string | null {
  if (!actor?.name || actor.type === 'anonymous') return null;
  return actor.type === 'robot' && !actor.name.startsWith('robot$') ? `robot$${actor.name}` : actor.name;
}

/** The words for a principal's kind, as a listing labels it. */
export const PRINCIPAL_KIND_LABELS: Record<PrincipalKind, string> = {
  user: 'user',
  robot: 'robot',
  workload: 'workload identity',
  anonymous: 'anonymous',
};
