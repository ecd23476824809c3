/**
 * The "unavailable" marker: an adapter marks an error that means "a dependency cannot serve right now" (the database
 * or the object store cannot be reached), and the HTTP layer answers it 503 UNAVAILABLE instead of 500, without
 * importing the adapter that failed. The mark is a symbol-keyed property, so it stays out of logs and of the error's
 * own fields (`code`, `sqlState`, ...), which keep saying what happened.
 */

/** Registered (`Symbol.for`), so that two copies of this module in one process agree on it. */
const UNAVAILABLE = Symbol.for('lading.dependencyUnavailable');

/** An error marked by `markUnavailable`. */
export interface UnavailableError {
  readonly [UNAVAILABLE]: true;
}

/** Marks `err` as meaning "a dependency cannot serve right now" and returns it. */
export function markUnavailable<E extends object>(err: E): E & UnavailableError {
  (err as E & { [UNAVAILABLE]?: true })[UNAVAILABLE] = true;
  return err as E & UnavailableError;
}

/** True when `err` was marked by `markUnavailable`. */
export function isUnavailable(err: unknown): err is UnavailableError {
  return typeof err === 'object' && err !== null && (err as { [UNAVAILABLE]?: unknown })[UNAVAILABLE] === true;
}
