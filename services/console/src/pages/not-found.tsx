/** The page for a console path that names no page. */
import { PageHeading } from '../components/page-heading';
import { href } from '../router';

/** Says the page does not exist and links home. */
export function NotFoundPage({ path }: { path: string }) {
  return (
    <>
      <PageHeading>Page not found</PageHeading>
      <p>
        There is no console page at <code>{path}</code>. <a href={href.home()}>Go to the repositories</a>.
      </p>
    </>
  );
}
