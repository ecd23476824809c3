/**
 * The console's build: `vite build` (run by `npm run build`, tools/build/bundle.ts) writes index.html and hashed
 * files under assets/ into `<repo>/dist/console/`, which the gateway serves under `/ui/`. Nothing is inlined: the
 * server's Content-Security-Policy allows scripts and styles from 'self' only.
 */
import path from 'node:path';
import { defineConfig } from 'vite';

const here = import.meta.dirname;

/** The registry `vite` (the dev server) sends the console's API requests to; LADING_REGISTRY names another. */
const registry = process.env.LADING_REGISTRY ?? 'http://127.0.0.1:5000';

export default defineConfig({
  root: here,
  base: '/ui/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: path.resolve(here, '..', '..', 'dist', 'console'),
    emptyOutDir: true,
    // Never a data: URL or an inline <script>/<style>: each asset is a file the CSP's 'self' covers.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: true,
  },
  // `npx vite --config services/console/vite.config.mts`: the console with hot reload at http://localhost:5173/ui/,
  // its API requests passed to a running registry (same origin for the browser, so the session cookie works).
  server: { proxy: Object.fromEntries(['/ui/api', '/api', '/v2', '/admin', '/token'].map((prefix) => [prefix, { target: registry }])) },
  logLevel: 'warn',
});
