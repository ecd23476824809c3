/**
 * A fake of the console's server for component specs: a `fetch` that answers from a table of routes and records
 * every request (method, path, headers, body), so a spec states only the answers its page needs and checks what
 * the page sent.
 */
import { type Api, createApi } from '../src/api';
import type { Session } from '../src/types';

/** A recorded request. */
export interface SeenRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
}

/** An answer: a status, a JSON (or text) body and headers. */
export interface FakeAnswer {
  status?: number;
  json?: unknown;
  text?: string;
  headers?: Record<string, string>;
}

/** A route: `"GET /api/v1/repositories?n=25"` (the path with its query, exactly) → an answer or a function of the request. */
export type FakeRoutes = Record<string, FakeAnswer | ((request: SeenRequest) => FakeAnswer)>;

/** The fake server: its API client, the requests it saw, and its routes (a spec may add to them). */
export interface FakeServer {
  api: Api;
  requests: SeenRequest[];
  routes: FakeRoutes;
  /** The requests other than loading the session (`GET /ui/api/session`). */
  sent(method?: string): SeenRequest[];
}

/** A signed-in user's session (auth on). */
export const SIGNED_IN: Session = { user: 'alice', admin: false, csrf: 'csrf-alice', auth: true };
/** An admin's session. */
export const ADMIN: Session = { user: 'root', admin: true, csrf: 'csrf-root', auth: true };
/** A namespace admin's session: `admin` on the namespaces `team` and `web` (issue 24), not a global admin. */
export const NAMESPACE_ADMIN: Session = { user: 'tess', admin: false, adminOf: ['team', 'web'], csrf: 'csrf-tess', auth: true };
/** Nobody signed in, auth on. */
export const ANONYMOUS: Session = { user: null, admin: false, csrf: null, auth: true };
/** Auth off: everything allowed, nobody signs in. */
export const AUTH_OFF: Session = { user: null, admin: false, csrf: null, auth: false };

/** A Response of an answer: jsdom has no fetch API, so the few members the console reads, made here. */
function fakeResponse(answer: FakeAnswer): Response {
  const status = answer.status ?? 200;
  const text = status === 204 ? '' : (answer.text ?? JSON.stringify(answer.json ?? {}));
  const headers = new Map(Object.entries({ 'content-type': 'application/json', ...answer.headers }).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    ok: status >= 200 && status < 300,
    status,
    statusText: '',
    headers: { get: (name: string) => headers.get(name.toLowerCase()) ?? null },
    json: async () => JSON.parse(text),
    text: async () => text,
  } as unknown as Response;
}

/** Starts a fake server with `session` at `GET /ui/api/session` and the given routes; others answer 404. */
export function fakeServer(session: Session, routes: FakeRoutes = {}): FakeServer {
  const requests: SeenRequest[] = [];
  const table: FakeRoutes = { 'GET /ui/api/session': { json: session }, ...routes };
  const fetchImpl = async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(String(input), 'http://registry.test');
    const method = (init.method ?? 'GET').toUpperCase();
    const headers = { ...(init.headers as Record<string, string>) };
    const request: SeenRequest = { method, path: url.pathname + url.search, headers, body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined };
    requests.push(request);
    const route = table[`${method} ${request.path}`];
    const answer = typeof route === 'function' ? route(request) : (route ?? { status: 404, json: { errors: [{ code: 'NOT_FOUND', message: `no fake route for ${method} ${request.path}` }] } });
    return fakeResponse(answer);
  };
  return {
    api: createApi(fetchImpl as typeof fetch),
    requests,
    routes: table,
    sent: (method) => requests.filter((r) => !(r.method === 'GET' && r.path === '/ui/api/session') && (!method || r.method === method)),
  };
}
