/** Loading a page's data: the result, the error, and a way to load again after a change. */
import { useCallback, useEffect, useState } from 'preact/hooks';

/** The state of one load. */
export interface Loaded<T> {
  data: T | null;
  error: Error | null;
  loading: boolean;
  /** Loads again (after a deletion, say), keeping the current data on screen until the new arrives. */
  reload(): void;
}

/**
 * Runs `load` when a dependency changes; a load that a newer one replaced (or the page left) is aborted and its
 * result dropped, so a slow answer never overwrites a newer one.
 */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: Error | null; loading: boolean }>({ data: null, error: null, loading: true });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(controller.signal).then(
      (data) => controller.signal.aborted || setState({ data, error: null, loading: false }),
      (error: unknown) => controller.signal.aborted || setState({ data: null, error: error instanceof Error ? error : new Error(String(error)), loading: false }),
    );
    return () => controller.abort();
    // `deps` are the caller's, as with useEffect; `load` is a new closure every render and deliberately not one.
  }, [...deps, generation]);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return { ...state, reload };
}
