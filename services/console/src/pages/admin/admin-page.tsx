/**
 * The admin pages (users, robots, personal access tokens, namespaces and grants, webhooks, the outbox's parked rows,
 * the collector, the audit log), behind a section navigation. A signed-in global admin sees them all; a namespace
 * admin (session `adminOf`) sees those the admin API opens to it (NAMESPACE_ADMIN_SECTIONS), each confined to its
 * namespaces. The admin API (`/admin/v1`) is the authority: it refuses everyone else in any case, auth off included
 * (AuthOff says what to do then).
 */
import { PageHeading } from '../../components/page-heading';
import { type AdminSection, href } from '../../router';
import { adminSectionsOf, useSession } from '../../session';
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

function Section({ section, query }: { section: AdminSection; query: URLSearchParams }) {
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
      return <AuditSection query={query} />;
    default:
      return <CollectorSection />;
  }
}

/**
 * What the admin pages say with auth off. The admin API stays behind an administrator's credentials then (what it
 * changes and shows, users, tokens, grants, webhooks, the audit log, matters most once auth is on, and opening it
 * would hand them to anyone on the network), and the console has no sign-in to give them: so, where to go instead.
 */
function AuthOff() {
  return (
    <section aria-labelledby="auth-off-heading">
      <h2 id="auth-off-heading">Authentication is off on this registry</h2>
      <p>
        Anyone who can reach it may push, pull and delete, and the console needs no sign-in for that. The admin API is the exception: it still answers only an administrator's
        credentials, and with auth off the console has no sign-in to send them. To administer this registry:
      </p>
      <ul>
        <li>
          use <code>tools/admin/lading-admin</code> (or any HTTP client with Basic credentials) as an administrator; the first one is created at start from <code>LADING_ADMIN_USER</code> and{' '}
          <code>LADING_ADMIN_PASSWORD</code>;
        </li>
        <li>
          or turn auth on (<code>LADING_AUTH_ENABLED=true</code>), sign in here as that administrator and use these pages.
        </li>
      </ul>
    </section>
  );
}

/** An admin page: the section navigation and the section (`query`: what it shows, from the URL). */
export function AdminPage({ section, query }: { section: AdminSection; query: URLSearchParams }) {
  const { session } = useSession();
  const sections = adminSectionsOf(session);
  if (sections.length === 0) {
    return (
      <>
        <PageHeading>Admin</PageHeading>
        {session?.auth ? (
          <p>
            Only administrators may use these pages.{' '}
            {session.user ? null : <a href={href.signIn(href.admin(section))}>Sign in as an administrator</a>}
          </p>
        ) : (
          <AuthOff />
        )}
      </>
    );
  }
  return (
    <>
      <PageHeading title={`Admin: ${TITLES[section]}`}>{TITLES[section]}</PageHeading>
      <nav aria-label="Admin sections" class="subnav">
        <ul>
          {sections.map((s) => (
            <li key={s}>
              <a href={href.admin(s)} aria-current={s === section ? 'page' : undefined}>
                {TITLES[s]}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      {sections.includes(section) ? (
        <Section section={section} query={query} />
      ) : (
        <p>This page is for global administrators. As an administrator of your namespaces, use the pages above.</p>
      )}
    </>
  );
}
