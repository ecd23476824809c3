/** How a page says it is loading or that something failed: announced to screen readers as it changes. */
import type { ComponentChildren } from 'preact';

/** A polite "Loading…" status. */
export function Loading({ what }: { what: string }) {
  return (
    <p class="status" role="status">
      Loading {what}…
    </p>
  );
}

/** An error message, announced at once (role=alert). */
export function ErrorMessage({ error, children }: { error?: Error | string | null; children?: ComponentChildren }) {
  if (!error && !children) return null;
  return (
    <div class="error" role="alert">
      {children}
      {error ? <p>{typeof error === 'string' ? error : error.message}</p> : null}
    </div>
  );
}
