/**
 * The admin pages (users, robots, personal access tokens, namespaces and grants, webhooks, the outbox's parked rows,
 * the collector, the audit log), behind a section navigation. Only a signed-in admin sees them; the admin API (`/admin/v1`) refuses
 * everyone else in any case, and with auth off it has no administrator to act for (use lading-admin there).
 */
import { PageHeading } from '../../components/page-heading';
import { ADMIN_SECTIONS, type AdminSection, href } from '../../router';
import { isAdmin, useSession } from '../../session';
import { AuditSection } from './audit';
import { CollectorSection } from './collector';
import { NamespacesSection } from './namespaces';
import { OutboxSection } from './outbox';
import { RobotsSection } from './robots';
import { TokensSection } from './tokens';
import { UsersSection } from './users';
import { WebhooksSection } from './webhooks';

const TITLES: Record<AdminSection, string> = {
  users: 'Users',
  robots: 'Robot accounts',
  tokens: 'Personal access tokens',
  namespaces: 'Namespaces and grants',
  webhooks: 'Webhooks',
  outbox: 'Parked events',
  collector: 'Garbage collector',
  audit: 'Audit log',
};

function Section({ section }: { section: AdminSection }) {
  switch (section) {
    case 'users':
      return <UsersSection />;
    case 'robots':
      return <RobotsSection />;
    case 'tokens':
      return <TokensSection />;
    case 'namespaces':
      return <NamespacesSection />;
    case 'webhooks':
      return <WebhooksSection />;
    case 'outbox':
      return <OutboxSection />;
    case 'audit':
      return <AuditSection />;
    default:
      return <CollectorSection />;
  }
}

/** An admin page: the section navigation and the section. */
export function AdminPage({ section }: { section: AdminSection }) {
  const { session } = useSession();
  if (!isAdmin(session)) {
    return (
      <>
        <PageHeading>Admin</PageHeading>
        {session?.auth ? (
          <p>
            Only administrators may use these pages.{' '}
            {session.user ? null : <a href={href.signIn(href.admin(section))}>Sign in as an administrator</a>}
          </p>
        ) : (
          <p>
            Authentication is off on this registry, so there is no administrator to sign in as: the admin API answers only an administrator's credentials.
            Use <code>lading-admin</code> with the admin's credentials once auth is on.
          </p>
        )}
      </>
    );
  }
  return (
    <>
      <PageHeading title={`Admin: ${TITLES[section]}`}>{TITLES[section]}</PageHeading>
      <nav aria-label="Admin sections" class="subnav">
        <ul>
          {ADMIN_SECTIONS.map((s) => (
            <li key={s}>
              <a href={href.admin(s)} aria-current={s === section ? 'page' : undefined}>
                {TITLES[s]}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <Section section={section} />
    </>
  );
}
