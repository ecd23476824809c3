/**
 * An app as node sees it, and an explicit way to put something in front of one: no patching of express's internals,
 * just a request handler that asks the front first and the app second.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';

/**
 * An app as node sees it: a server's request listener (called without `next`) that can also be mounted in another
 * app's handler (called with a `next`, which gets what it does not answer). An express app is one, and so is an app
 * with a front (`withFront`); `listen` starts a plain HTTP server on it, as express's does (tests use it).
 */
export interface HttpApp {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  listen(port?: number, host?: string, listening?: () => void): Server;
}

/**
 * What sees a request before its app, on bare node objects: returns true when it took the request. `next` is the
 * caller's when the app is mounted, undefined when it is the server's listener.
 */
export type Front = (req: IncomingMessage, res: ServerResponse, next: ((err?: unknown) => void) | undefined) => boolean;

/**
 * `app` with `front` in front of it: a new app that hands every request to `front` first and to `app` when the front
 * did not take it. Nothing is allocated per request beyond what `front` and `app` do.
 */
export function withFront(app: HttpApp, front: Front): HttpApp {
  const fronted = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void => {
    if (!front(req, res, next)) app(req, res, next);
  };
  return Object.assign(fronted, {
    listen: (port?: number, host?: string, listening?: () => void): Server => createServer(fronted).listen(port, host, listening),
  });
}
