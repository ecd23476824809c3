/**
 * The console's build: `vite build` (run by `npm run build`, tools/build/bundle.ts) writes index.html and hashed
 * files under assets/ into `<repo>/dist/console/`, which the gateway serves under `/ui/`. Nothing is inlined: the
 * server's Content-Security-Policy allows scripts and styles from 'self' only.
 */
import path from 'node:path';
import { defineConfig } from 'vite';

const here = import.meta.dirname;

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
  logLevel: 'warn',
});
