/**
 * Company sign-in to the web console in a real browser: Chromium (the system's, driven by playwright-core; never a
 * downloaded browser) against the embedded registry with auth on and `auth.oidc` set to a real OpenID Provider on
 * loopback (the certified `oidc-provider` package, with the login and consent pages of @lading/testing's
 * startOpenIdProvider).
 *
 * A person goes from the console's "Sign in with your company account" to the provider's login page, types a wrong
 * password (and stays there, told so), then the right one, allows the console, and is back in the console signed in
 * as the user made just in time, seeing the private repository their provider group is granted (and not another);
 * signing out ends the provider's session too. A person in none of `allowedGroups` comes back to the console's
 * sign-in page with the reason in words, and no session.
 *
 *   node --import tsx tools/console/oidc-browser.ts                              the checks (tools/console/browser.sh)
 *   node --import tsx tools/console/oidc-browser.ts --screenshots docs/console   and the screenshots of docs/oidc.md
 *
 * Prints one line per check and `console: N passed, M failed` (the summary line tools/test.sh adds up).
 */
import { randomBytes } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createRegistryClient } from '@lading/client';
import { type OpenIdProvider, freePort, imageManifest, makeBlob, startOpenIdProvider } from '@lading/testing';
import { CONSOLE_ASSETS, assert, callAdminApi, createBrowserChecks } from './browser-checks';
import { type ServedRegistry, pushImage, serveEmbeddedRegistry } from '../../services/embedded/test/served-registry';

const ADMIN = { user: 'root', password: randomBytes(12).toString('base64url') };
const ALICE = { login: 'alice', password: randomBytes(9).toString('base64url') };
const MALLORY = { login: 'mallory', password: randomBytes(9).toString('base64url') };
const STEP_TIMEOUT_MS = 15_000;


const { check, screenshot, run } = createBrowserChecks(process.argv.slice(2));

/** The errors the console's pages logged (a CSP violation is one). */
const pageErrors: string[] = [];
function watch(page: Page, consoleOrigin: string): Page {
  page.on('console', (message) => {
    if (new URL(page.url()).origin !== consoleOrigin || message.type() !== 'error') return;
    if (!/Failed to load resource: the server responded with a status of 40[134]/.test(message.text())) pageErrors.push(`${page.url()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => pageErrors.push(`${page.url()}: ${error.message}`));
  return page;
}

const adminApi = (served: ServedRegistry, method: string, route: string, body: unknown) => callAdminApi(served.url, ADMIN, method, route, body);

/** From the console's sign-in page to the provider's login page. */
async function toProviderLogin(page: Page, provider: OpenIdProvider): Promise<void> {
  await page.goto('/ui/');
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.getByRole('link', { name: 'Sign in with your company account' }).click();
  await page.getByRole('heading', { name: 'Corp sign-in' }).waitFor();
  assert(new URL(page.url()).origin === provider.issuer, `the login page is ${page.url()}, not the provider's`);
}

/** Fills the provider's login form and sends it. */
async function providerLogin(page: Page, login: string, password: string): Promise<void> {
  await page.getByLabel('Username').fill(login);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function scenario(browser: Browser): Promise<void> {
  // The registry's URL is in its configuration (the callback the provider sends browsers to), so its port comes first.
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const provider = await startOpenIdProvider(`${url}/ui/api/oidc/callback`);
  provider.accounts.set('sub-alice', { password: ALICE.password, preferred_username: 'alice', email: 'alice@corp.example', email_verified: true, groups: ['devs'] });
  provider.accounts.set('sub-mallory', { password: MALLORY.password, preferred_username: 'mallory', email: 'mallory@corp.example', email_verified: true, groups: ['contractors'] });
  const served = await serveEmbeddedRegistry(
    {
      http: { host: url },
      auth: { enabled: true, oidc: { issuer: provider.issuer, clientId: provider.clientId, clientSecret: provider.clientSecret, scopes: ['openid', 'profile', 'email', 'groups'], allowedGroups: ['devs'] } },
      admin: ADMIN,
      // Plain http on 127.0.0.1: a Secure cookie would not come back.
      console: { assets: CONSOLE_ASSETS, secureCookie: false },
      gc: { enabled: false },
    } as never,
    { port },
  );
  const admin = createRegistryClient({ url: served.url, credentials: { username: ADMIN.user, password: ADMIN.password }, timeoutMs: 20_000 });
  const contexts: BrowserContext[] = [];
  const newPage = async () => {
    const context = await browser.newContext({ baseURL: served.url, viewport: { width: 1280, height: 860 } });
    contexts.push(context);
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    return watch(await context.newPage(), served.url);
  };
  try {
    // team/* is private and granted to the provider's group "devs"; vault/* is private and granted to no one.
    await adminApi(served, 'POST', '/namespaces', { prefix: 'team', public: false });
    await adminApi(served, 'POST', '/namespaces', { prefix: 'vault', public: false });
    await adminApi(served, 'POST', '/grants', { prefix: 'team', principal: 'group:devs', role: 'pull' });
    const config = makeBlob(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    const layer = makeBlob(2_000);
    for (const repository of ['team/app', 'vault/keys']) {
      const status = await pushImage(admin, repository, 'v1', imageManifest(config, [layer]), [config, layer]);
      assert(status === 201, `pushing ${repository}:v1 answered ${status}`);
    }

    const page = await newPage();
    await check("company sign-in: a wrong password stays on the provider's login page, saying so", async () => {
      await toProviderLogin(page, provider);
      await providerLogin(page, ALICE.login, `${ALICE.password}-wrong`);
      await page.getByRole('alert').filter({ hasText: 'Invalid username or password.' }).waitFor();
      assert(new URL(page.url()).origin === provider.issuer, `after a wrong password the page is ${page.url()}`);
      await page.getByLabel('Password').fill('');
      await screenshot(page, 'oidc-provider-login');
    });

    await check('company sign-in: through the login page and the consent, back in the console as the new user, seeing what the group may pull', async () => {
      await providerLogin(page, ALICE.login, ALICE.password);
      await page.getByRole('button', { name: 'Allow' }).click();
      await page.getByText('Signed in as alice').waitFor();
      assert(new URL(page.url()).origin === served.url && new URL(page.url()).pathname === '/ui/', `after the sign-in the page is ${page.url()}`);
      await page.getByRole('rowheader', { name: 'team/app' }).waitFor();
      assert((await page.getByRole('rowheader', { name: 'vault/keys' }).count()) === 0, 'vault/keys, granted to no group of alice, is listed');
      await screenshot(page, 'oidc-signed-in');
      const users = await fetch(`${served.url}/admin/v1/users`, { headers: { Authorization: `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}` } });
      assert(((await users.json()) as { users: Array<{ name: string }> }).users.some((u) => u.name === 'alice'), 'no user alice was made');
    });

    await check("company sign-in: signing out ends the provider's session too, then back to the console signed out", async () => {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Corp sign-out' }).waitFor();
      assert(new URL(page.url()).origin === provider.issuer, `signing out went to ${page.url()}, not the provider's logout`);
      await page.getByRole('button', { name: 'Sign out of Corp' }).click();
      await page.getByRole('link', { name: 'Sign in' }).waitFor();
      assert(new URL(page.url()).origin === served.url, `after signing out the page is ${page.url()}`);
      assert((await page.getByRole('rowheader', { name: 'team/app' }).count()) === 0, 'team/app is still listed after signing out');
      // The provider's session is gone: company sign-in asks for the password again.
      await toProviderLogin(page, provider);
      await page.getByLabel('Password').waitFor();
    });

    const outsider = await newPage();
    await check('company sign-in: a person in none of the allowed groups comes back to the console refused, in words, with no session', async () => {
      await toProviderLogin(outsider, provider);
      await providerLogin(outsider, MALLORY.login, MALLORY.password);
      await outsider.getByRole('button', { name: 'Allow' }).click();
      const alert = outsider.getByRole('alert').filter({ hasText: 'Company sign-in refused.' });
      await alert.waitFor();
      assert((await alert.textContent())?.includes('in none of the groups allowed here'), `the console says: ${await alert.textContent()}`);
      assert(new URL(outsider.url()).pathname === '/ui/sign-in', `the refused sign-in ends at ${outsider.url()}`);
      assert((await outsider.getByText('Signed in as').count()) === 0, 'the refused person is signed in');
      await screenshot(outsider, 'oidc-refused');
    });

    await check('company sign-in: no console page logged an error (a Content-Security-Policy violation among them)', async () => {
      assert(pageErrors.length === 0, pageErrors.slice(0, 5).join('\n'));
    });
  } finally {
    for (const context of contexts) await context.close().catch(() => undefined);
    await admin.close();
    await served.close();
    await provider.close();
  }
}

void run('the company sign-in scenario', scenario);
