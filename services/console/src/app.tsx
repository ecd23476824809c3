/**
 * The console's shell: a skip link, the banner with the site navigation, and the page of the current route in the
 * main landmark. After a route change, focus moves to the new page's h1 (components/page-heading.tsx) so that
 * keyboard and screen-reader users land on the new page, as a full page load would put them.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ErrorMessage, Loading } from './components/status';
import { AdminPage } from './pages/admin/admin-page';
import { BlobPage } from './pages/blob';
import { FeedPage } from './pages/feed';
import { HomePage } from './pages/home';
import { ImagePage } from './pages/image';
import { InsightsPage } from './pages/insights';
import { NotFoundPage } from './pages/not-found';
import { RepositoryPage } from './pages/repository';
import { SignInPage } from './pages/sign-in';
import { type Route, href, interceptLinkClick, navigate, pageKey, useRoute } from './router';
import { adminSectionsOf, useSession } from './session';

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case 'home':
      return <HomePage query={route.query} />;
    case 'sign-in':
      return <SignInPage next={route.next} refused={route.refused} />;
    case 'repository':
      return <RepositoryPage name={route.name} />;
    case 'image':
      return <ImagePage name={route.name} reference={route.reference} />;
    case 'blob':
      return <BlobPage name={route.name} digest={route.digest} mediaType={route.mediaType} />;
    case 'feed':
      return <FeedPage />;
    case 'insights':
      return <InsightsPage />;
    case 'admin':
      return <AdminPage section={route.section} query={route.query} />;
    default:
      return <NotFoundPage path={route.path} />;
  }
}

function Navigation({ route }: { route: Route }) {
  const { session, signOut } = useSession();
  const [failed, setFailed] = useState<string | null>(null);
  const current = (page: Route['page']) => (route.page === page ? 'page' : undefined);
  const out = async () => {
    setFailed(null);
    try {
      await signOut();
      navigate(href.home());
    } catch (err) {
      setFailed(`Signing out failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  return (
    <nav aria-label="Main">
      <ul>
        <li>
          <a href={href.home()} aria-current={current('home')}>
            Repositories
          </a>
        </li>
        <li>
          <a href={href.feed()} aria-current={current('feed')}>
            Live feed
          </a>
        </li>
        <li>
          <a href={href.insights()} aria-current={current('insights')}>
            Insights
          </a>
        </li>
        {/* With auth off the link leads to how to administer such a registry (admin-page.tsx); a namespace admin's
            to the first page it may use. */}
        {adminSectionsOf(session).length > 0 || session?.auth === false ? (
          <li>
            <a href={href.admin(adminSectionsOf(session)[0] ?? 'users')} aria-current={current('admin')}>
              Admin
            </a>
          </li>
        ) : null}
        {session?.auth && session.user ? (
          <li class="account">
            <span>
              Signed in as <strong>{session.user}</strong>
            </span>
            <button type="button" class="link" onClick={out}>
              Sign out
            </button>
            {failed ? (
              <span role="alert" class="error">
                {failed}
              </span>
            ) : null}
          </li>
        ) : session?.auth ? (
          <li class="account">
            <a href={href.signIn(location.pathname + location.search)} aria-current={current('sign-in')}>
              Sign in
            </a>
          </li>
        ) : null}
      </ul>
    </nav>
  );
}

/** The whole app: the shell around the current route's page. */
export function App() {
  const route = useRoute();
  const { session, error } = useSession();
  const key = pageKey(route);
  const first = useRef(true);
  useEffect(() => {
    document.addEventListener('click', interceptLinkClick);
    return () => document.removeEventListener('click', interceptLinkClick);
  }, []);
  useEffect(() => {
    // The first page keeps the browser's own start; later ones move focus to their heading.
    if (first.current) {
      first.current = false;
      return;
    }
    document.getElementById('page-heading')?.focus();
    window.scrollTo?.(0, 0);
  }, [key]);
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="banner">
        <a class="brand" href={href.home()}>
          Lading
        </a>
        <Navigation route={route} />
      </header>
      <main id="main" tabIndex={-1}>
        {error ? <ErrorMessage error={`The session could not be loaded: ${error}`} /> : session ? <Page key={key} route={route} /> : <Loading what="the session" />}
      </main>
    </>
  );
}
