/**
 * A page's one h1, and the document title to match. It is the target of focus after a route change (app.tsx), so
 * a screen reader announces the new page and keyboard users start from its top.
 */
import type { ComponentChildren } from 'preact';
import { useEffect } from 'preact/hooks';

/** The h1 of a page; `title` is the plain-text title (defaults to the heading's text when a string). */
export function PageHeading({ children, title }: { children: ComponentChildren; title?: string }) {
  const text = title ?? (typeof children === 'string' ? children : 'Lading');
  useEffect(() => {
    document.title = `${text} · Lading`;
  }, [text]);
  return (
    <h1 id="page-heading" tabIndex={-1}>
      {children}
    </h1>
  );
}
