/** How a page says it is loading or that something failed: announced to screen readers as it changes. */
import type { ComponentChildren } from 'preact';
import { ApiError } from '../api';
import { href } from '../router';
import type { Loaded } from './use-load';

/** A polite "Loading…" status. */
export function Loading({ what }: { what: string }) {
  return (
    <p class="status" role="status">
      Loading {what}…
    </p>
  );
}

/** An error message, announced at once (role=alert); a refusal for want of credentials (401) links to signing in. */
export function ErrorMessage({ error, children }: { error?: Error | string | null; children?: ComponentChildren }) {
  if (!error && !children) return null;
  return (
    <div class="error" role="alert">
      {children}
      {error ? <p>{typeof error === 'string' ? error : error.message}</p> : null}
      {error instanceof ApiError && error.status === 401 ? (
        <p>
          <a href={href.signIn(location.pathname + location.search)}>Sign in</a> to see this.
        </p>
      ) : null}
    </div>
  );
}

/**
 * What a section shows while its data is not there: the load's error, or "Loading …" until it has data or fails
 * (nothing once it has data).
 */
export function LoadStatus({ state, what }: { state: Pick<Loaded<unknown>, 'data' | 'error'>; what: string }) {
  if (state.error) return <ErrorMessage error={state.error} />;
  return state.data ? null : <Loading what={what} />;
}
