/**
 * A principal in a listing: a user's name, a robot's login (`robot$ci`, which says what it is), and a workload
 * identity's subject (`wi$deploy`) with a badge naming it, since it is no account: a CI job's ID token exchanged under
 * the trust rule `deploy` (docs/oidc.md).
 */
import { PRINCIPAL_KIND_LABELS, principalParts } from '../principal';

/** What to show: the principal as the registry writes it, and what to say when there is none. */
export function PrincipalName({ name, none = '—' }: { name: string | null | undefined; none?: string }) {
  const parts = principalParts(name);
  if (parts.kind === 'anonymous') return <>{none}</>;
  if (parts.kind !== 'workload') return <>{parts.principal}</>;
  return (
    <span class="principal">
      {parts.principal} <span class="badge">{PRINCIPAL_KIND_LABELS.workload}</span>
    </span>
  );
}
