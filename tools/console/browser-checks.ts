/**
 * What the console's browser scripts (browser.ts, oidc-browser.ts) share: where the built console and the system's
 * Chromium are, named checks that count passes and failures and go on after one fails, screenshots when asked for
 * (`--screenshots [dir]`), and the run itself, which ends with the `console: N passed, M failed` line tools/test.sh
 * adds up.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';

/** The repository's root. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');
/** The system's Chromium (tools/console/install-chromium.sh puts it there); CHROMIUM names another. */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** The built console the registry serves (`npm run build -- console`). */
export const CONSOLE_ASSETS = path.join(REPO_ROOT, 'dist', 'console');

/** Throws `message` unless `condition` holds. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** Calls the registry's admin API at `baseUrl` with `admin`'s Basic credentials; throws unless it answers 2xx. */
export async function callAdminApi(baseUrl: string, admin: { user: string; password: string }, method: string, route: string, body: unknown): Promise<void> {
  const response = await fetch(`${baseUrl}/admin/v1${route}`, {
    method,
    headers: { Authorization: `Basic ${Buffer.from(`${admin.user}:${admin.password}`).toString('base64')}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert(response.ok, `${method} /admin/v1${route} answered ${response.status}: ${await response.text()}`);
}

/** A script's checks: each named, counted, and printed as it ends. */
export interface BrowserChecks {
  /** Runs one named check; a failure is printed and counted, and the next check runs. */
  check(name: string, body: () => Promise<void>): Promise<void>;
  /** Saves a screenshot when the script was asked for them (`--screenshots`). */
  screenshot(page: Page, name: string, options?: { fullPage?: boolean; mask?: string[] }): Promise<void>;
  /**
   * Launches Chromium headless, runs `scenario` in it, and prints the summary line (a scenario that throws counts as
   * one failure, `what` naming it); sets the exit status.
   */
  run(what: string, scenario: (browser: Browser) => Promise<void>): Promise<void>;
}

/** The checks of a script run with `argv` (its arguments after the script's name). */
export function createBrowserChecks(argv: string[]): BrowserChecks {
  const screenshotsAt = argv[0] === '--screenshots' ? path.resolve(argv[1] ?? path.join(REPO_ROOT, 'docs', 'console')) : null;
  let passed = 0;
  let failed = 0;
  return {
    async check(name, body) {
      const started = performance.now();
      try {
        await body();
        passed += 1;
        console.log(`ok    ${name} (${Math.round(performance.now() - started)} ms)`);
      } catch (err) {
        failed += 1;
        console.log(`FAIL  ${name}: ${err instanceof Error ? err.message.split('\n').slice(0, 6).join('\n      ') : String(err)}`);
      }
    },
    async screenshot(page, name, options = {}) {
      if (!screenshotsAt) return;
      mkdirSync(screenshotsAt, { recursive: true });
      await page.screenshot({ path: path.join(screenshotsAt, `${name}.png`), fullPage: options.fullPage, mask: (options.mask ?? []).map((s) => page.locator(s)), animations: 'disabled' });
    },
    async run(what, scenario) {
      const started = performance.now();
      try {
        assert(existsSync(path.join(CONSOLE_ASSETS, 'index.html')), `no built console in ${CONSOLE_ASSETS}: run npm run build -- console`);
        assert(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: run tools/console/install-chromium.sh`);
        const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
        try {
          await scenario(browser);
        } finally {
          await browser.close();
        }
      } catch (err) {
        failed += 1;
        console.log(`FAIL  ${what} could not run: ${err instanceof Error ? err.stack : String(err)}`);
      }
      console.log(`console: ${passed} passed, ${failed} failed (${Math.round((performance.now() - started) / 1000)} s)`);
      process.exitCode = failed === 0 ? 0 : 1;
    },
  };
}
