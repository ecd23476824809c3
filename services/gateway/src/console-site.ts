/**
 * The web console's files, served by the gateway under `/ui/` (and `/` redirected there): whatever the console's
 * build left in `console.assets`, served by express's static middleware (serve-static, which refuses paths that
 * leave the directory). Hashed files under `/ui/assets/` are cached for a year; `index.html`, and any other path
 * under `/ui/` that names no file (the single-page app's own routes), are `index.html` again, never cached.
 *
 * Every `/ui` answer carries a strict Content-Security-Policy and the headers that keep a browser from sniffing or
 * leaking the referrer. `/ui/api/` is the route table's (sessions), so it is passed on. None of this is on the
 * pull fast path: it is an express router behind it.
 */
import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import express, { Router } from 'express';
import type { LadingConfig } from '@lading/config';
import { OciError } from '@lading/oci';

/** The Content-Security-Policy of every `/ui` answer: the console's own origin only, no framing, no inline code. */
export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** What the console's files are served from. */
export interface ConsoleSiteOptions {
  /** The built console's directory (absolute, or relative to the process's working directory). */
  assets: string;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Sets the security headers every `/ui` answer carries. */
function secure(res: express.Response): void {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
}

/** Creates the router of `/` and `/ui/`. */
export function createConsoleSite(options: ConsoleSiteOptions): Router {
  const root = resolve(options.assets);
  const index = join(root, 'index.html');
  const router = Router();
  const files = express.static(root, {
    index: false,
    redirect: false,
    dotfiles: 'ignore',
    fallthrough: true,
    setHeaders(res, path) {
      res.setHeader('Cache-Control', path.startsWith(join(root, 'assets') + '/') ? IMMUTABLE : 'no-cache');
    },
  });

  router.get('/', (_req, res) => {
    res.redirect(302, '/ui/');
  });
  router.use('/ui', (req, res, next) => {
    secure(res);
    // The session API is the route table's.
    if (req.path.startsWith('/api/') || req.path === '/api') return next();
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    access(index).then(
      () => {
        // `/ui` itself: the app lives under `/ui/`, so that its relative links resolve there.
        if (req.originalUrl === '/ui' || req.originalUrl.startsWith('/ui?')) return res.redirect(302, '/ui/');
        if (req.path === '/index.html' || req.path === '/') return sendIndex(res, next);
        files(req, res, () => {
          // A missing hashed asset is a 404 (a stale page asking for an old build), not the app's page.
          if (req.path.startsWith('/assets/')) return next(new OciError('NOT_FOUND', 'no such console asset', { path: req.path.slice(0, 300) }));
          sendIndex(res, next);
        });
      },
      () => next(new OciError('UNAVAILABLE', 'the web console is not installed on this registry (console.assets names no built console)')),
    );
  });

  function sendIndex(res: express.Response, next: express.NextFunction): void {
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(index, { dotfiles: 'deny', cacheControl: false, lastModified: true }, (err) => {
      if (err && !res.headersSent) next(new OciError('UNAVAILABLE', 'the web console cannot be read'));
    });
  }
  return router;
}

/** The console site as the configuration sets it up, or undefined when `console.enabled` is false. */
export function consoleSiteFromConfig(config: LadingConfig): Router | undefined {
  return config.console.enabled ? createConsoleSite({ assets: config.console.assets }) : undefined;
}
