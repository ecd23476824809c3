/**
 * The console's one way to the server: same-origin `fetch` with the session cookie, the CSRF header on every
 * request that changes something, and the OCI error envelope (`{"errors":[{code,message,detail}]}`) turned into an
 * `ApiError` whose message a page can show as it is.
 */

/** One entry of the OCI error envelope. */
export interface OciErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

/** A request the server answered with an error status (or that never reached it: status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errors: OciErrorEntry[],
  ) {
    super(errors.map((e) => e.message || e.code).join('; ') || `the server answered ${status}`);
    this.name = 'ApiError';
  }

  /** Whether the server refused for want of credentials (401) or of permission (403). */
  get refused(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

/** What a request may carry besides its method and path. */
export interface RequestOptions {
  method?: string;
  /** Sent as JSON. */
  json?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A client of the console's server: the fetch it uses and the CSRF token of the current session. */
export interface Api {
  /** The response of a successful request (2xx); an error status is thrown as an `ApiError`. */
  request(path: string, options?: RequestOptions): Promise<Response>;
  /** A successful request's JSON body. */
  json<T>(path: string, options?: RequestOptions): Promise<T>;
  /** Sets the CSRF token sent with every non-GET request (null once signed out). */
  setCsrf(csrf: string | null): void;
}

const SAFE_METHODS = new Set(['GET', 'HEAD']);

/** Reads an error response's OCI envelope; a body that is not one becomes one entry naming the status. */
async function errorOf(response: Response): Promise<ApiError> {
  let entries: OciErrorEntry[] = [];
  try {
    const body = (await response.json()) as { errors?: unknown };
    if (Array.isArray(body.errors)) {
      entries = body.errors.filter((e): e is OciErrorEntry => typeof e === 'object' && e !== null && typeof (e as OciErrorEntry).code === 'string');
    }
  } catch {
    // Not JSON: the status says enough.
  }
  if (!entries.length) entries = [{ code: 'HTTP_' + response.status, message: `the server answered ${response.status} ${response.statusText}`.trim() }];
  return new ApiError(response.status, entries);
}

/** Creates the client; `fetchImpl` is the browser's fetch unless a test gives another. */
export function createApi(fetchImpl: typeof fetch = (...args) => fetch(...args)): Api {
  let csrf: string | null = null;
  const api: Api = {
    async request(path, options = {}) {
      const method = (options.method ?? 'GET').toUpperCase();
      const headers: Record<string, string> = { ...options.headers };
      if (!SAFE_METHODS.has(method) && csrf) headers['X-CSRF-Token'] = csrf;
      let body: string | undefined;
      if (options.json !== undefined) {
        headers['Content-Type'] = 'application/json';
        body = JSON.stringify(options.json);
      }
      let response: Response;
      try {
        response = await fetchImpl(path, { method, headers, body, credentials: 'same-origin', signal: options.signal });
      } catch (err) {
        if (err instanceof DOMException && err.name === 'AbortError') throw err;
        throw new ApiError(0, [{ code: 'NETWORK', message: 'the server could not be reached' }]);
      }
      if (!response.ok) throw await errorOf(response);
      return response;
    },
    async json<T>(path: string, options?: RequestOptions): Promise<T> {
      const response = await api.request(path, options);
      return (await response.json()) as T;
    },
    setCsrf(value) {
      csrf = value;
    },
  };
  return api;
}

/** A query string of the given parameters, leaving out empty ones; repeated values for an array. */
export function queryString(params: Record<string, string | number | undefined | null | readonly string[]>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    if (Array.isArray(value)) for (const v of value) search.append(key, v);
    else search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** A repository name as a path: each component URI-encoded, the slashes kept (the registry's routes match them). */
export function repositoryPath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

/**
 * The `last` value for the next page from a `next` the server sent: either the name itself or a link whose query
 * carries `last` (as the registry's own `Link` header does).
 */
export function lastOfNext(next: string): string {
  if (!next.includes('?')) return next;
  return new URLSearchParams(next.slice(next.indexOf('?') + 1)).get('last') ?? next;
}
