/**
 * The web console in a real browser against the real embedded registry: Chromium (the system's, driven by
 * playwright-core; never a downloaded browser) on the console that `npm run build -- console` left in dist/console/,
 * served by the registry's gateway with its Content-Security-Policy.
 *
 * With auth on: an admin signs in, searches, opens an image (its layers, its config, a referrer, the referrer's JSON
 * in the viewer), deletes a tag through the confirmation, creates a robot whose once-shown secret then pushes with
 * skopeo (or, without skopeo, gets a token at /token), and sees that push arrive in the live feed; creates a webhook
 * and rotates its secret (each shown once), makes a namespace's tags immutable (a push that would move one is
 * refused; a bad pattern is refused in the API's words) and lifts it again, collects garbage and finds the collection in
 * the collector's status, finds the webhook's creation in the audit log, newest first, with its filters kept in the URL
 * through a reload and back; a namespace admin changes its namespace's tag rules; an anonymous visitor sees no private repository in the list, the
 * search or the feed. With auth off: browsing and searching need no sign-in, and Admin says how to administer. No page may log an error (a CSP violation among them).
 *
 *   node --import tsx tools/console/browser.ts                              the checks (tools/console/browser.sh)
 *   node --import tsx tools/console/browser.ts --screenshots docs/console   and the screenshots docs/console-ui.md shows
 *
 * Prints one line per check and `console: N passed, M failed` (the summary line tools/test.sh adds up).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { type RegistryClient, createRegistryClient } from '@lading/client';
import { type TestBlob, type TestManifest, imageIndex, imageManifest, makeBlob, makeManifest } from '@lading/testing';
import { CONSOLE_ASSETS, assert, callAdminApi, createBrowserChecks } from './browser-checks';
import { type ServedRegistry, pushImage, serveEmbeddedRegistry } from '../../services/embedded/test/served-registry';

const ADMIN = { user: 'root', password: randomBytes(12).toString('base64url') };
const STEP_TIMEOUT_MS = 15_000;
/** A webhook's address: loopback, let through by the allow list below (nothing listens there; deliveries just fail). */
const WEBHOOK_URL = 'http://127.0.0.1:9/hooks/lading';


// ---- the checks' bookkeeping -------------------------------------------------------------------------------------

const { check, screenshot, run } = createBrowserChecks(process.argv.slice(2));

/** The errors pages logged (a CSP violation is one) and any request that left the registry's origin, by page URL. */
const pageErrors: string[] = [];
function watch(page: Page): Page {
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol !== 'data:' && url.origin !== new URL(page.url() === 'about:blank' ? request.url() : page.url()).origin) {
      pageErrors.push(`${page.url()}: a request to another origin: ${request.url()}`);
    }
  });
  page.on('console', (message) => {
    const text = message.text();
    if (message.type() !== 'error' || /Failed to load resource: the server responded with a status of 40[134]/.test(text)) return;
    // The one bad request a check sends on purpose: a tag pattern the admin API refuses (400), its words shown.
    if (/status of 400/.test(text) && message.location().url.includes('/admin/v1/namespaces?prefix=')) return;
    pageErrors.push(`${page.url()}: ${text}`);
  });
  page.on('pageerror', (error) => pageErrors.push(`${page.url()}: ${error.message}`));
  return page;
}

// ---- content -----------------------------------------------------------------------------------------------------

/** An image whose config has what the image page shows: history, environment, entrypoint, command, labels. */
function testImage(tag: string): { manifest: TestManifest; blobs: TestBlob[] } {
  const config = makeBlob(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2026-12-01T10:00:00Z',
      config: { Env: ['PATH=/usr/local/bin:/usr/bin', `APP_VERSION=${tag}`], Entrypoint: ['/usr/local/bin/app'], Cmd: ['--serve'], Labels: { 'org.opencontainers.image.title': 'app' } },
      rootfs: { type: 'layers', diff_ids: [] },
      history: [{ created: '2026-12-01T10:00:00Z', created_by: 'ADD rootfs.tar.gz /' }, { created: '2026-12-01T10:00:01Z', created_by: 'COPY app /usr/local/bin/app' }],
    }),
  );
  const layers = [makeBlob(40_000), makeBlob(3_000)];
  return { manifest: imageManifest(config, layers), blobs: [config, ...layers] };
}

/** An SBOM artifact whose subject is `subject`: an empty config and one JSON file. */
function sbomOf(subject: TestManifest): { manifest: TestManifest; blobs: TestBlob[] } {
  const empty = makeBlob('{}');
  const sbom = makeBlob(JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'team/app', packages: [{ name: 'zlib', versionInfo: '1.3.1' }] }));
  const manifest = makeManifest({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: 'application/spdx+json',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: empty.size },
    layers: [{ mediaType: 'application/spdx+json', digest: sbom.digest, size: sbom.size, annotations: { 'org.opencontainers.image.title': 'sbom.spdx.json' } }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.body.length },
    annotations: { 'org.opencontainers.image.created': '2026-12-01T10:05:00Z' },
  });
  return { manifest, blobs: [empty, sbom] };
}

async function push(client: RegistryClient, repository: string, reference: string, image: { manifest: TestManifest; blobs: TestBlob[] }): Promise<void> {
  const status = await pushImage(client, repository, reference, image.manifest, image.blobs);
  assert(status === 201, `pushing ${repository}:${reference} answered ${status}`);
}

const adminApi = (served: ServedRegistry, method: string, route: string, body: unknown) => callAdminApi(served.url, ADMIN, method, route, body);

function serve(auth: boolean): Promise<ServedRegistry> {
  return serveEmbeddedRegistry({
    auth: { enabled: auth },
    ...(auth ? { admin: ADMIN } : {}),
    // Plain http on 127.0.0.1: a Secure cookie would not come back.
    console: { assets: CONSOLE_ASSETS, secureCookie: false },
    gc: { enabled: false },
    webhooks: { allowList: ['127.0.0.1'] },
  });
}

const hostOf = (served: ServedRegistry) => new URL(served.url).host;

// ---- the scenario with auth on -----------------------------------------------------------------------------------

async function withAuth(browser: Browser): Promise<void> {
  const served = await serve(true);
  const admin = createRegistryClient({ url: served.url, credentials: { username: ADMIN.user, password: ADMIN.password }, timeoutMs: 20_000 });
  const contexts: BrowserContext[] = [];
  const newPage = async (viewport = { width: 1280, height: 860 }) => {
    const context = await browser.newContext({ baseURL: served.url, viewport });
    contexts.push(context);
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    return watch(await context.newPage());
  };
  try {
    const v1 = testImage('v1');
    await adminApi(served, 'POST', '/namespaces', { prefix: 'public', public: true });
    await adminApi(served, 'POST', '/namespaces', { prefix: 'team', public: false });
    await push(admin, 'team/app', 'v1', v1);
    await push(admin, 'team/app', 'v2', testImage('v2'));
    const sbom = sbomOf(v1.manifest);
    await push(admin, 'team/app', sbom.manifest.digest, sbom);
    await push(admin, 'public/hello', 'latest', testImage('hello'));
    await push(admin, 'team/old', 'v1', testImage('old'));
    const amd64 = testImage('amd64');
    const arm64 = testImage('arm64');
    await push(admin, 'team/app', amd64.manifest.digest, amd64);
    await push(admin, 'team/app', arm64.manifest.digest, arm64);
    await push(admin, 'team/app', 'multi', { manifest: imageIndex([amd64.manifest, arm64.manifest]), blobs: [] });

    const page = await newPage();
    let robotSecret = '';

    await check('signs in with a username and password', async () => {
      await page.goto('/ui/');
      await page.getByRole('link', { name: 'Sign in' }).click();
      await page.getByLabel('Username').fill(ADMIN.user);
      await page.getByLabel('Password or personal access token').fill(ADMIN.password);
      await screenshot(page, 'sign-in');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByText(`Signed in as ${ADMIN.user}`).waitFor();
      assert(new URL(page.url()).pathname === '/ui/', `after signing in the page is ${page.url()}`);
    });

    await check('keyboard: the first Tab reaches the skip link, which leads to the main content', async () => {
      await page.goto('/ui/');
      await page.getByRole('heading', { level: 1, name: 'Repositories' }).waitFor();
      await page.keyboard.press('Tab');
      assert((await page.evaluate('document.activeElement?.textContent')) === 'Skip to content', 'the first Tab did not reach the skip link');
      await page.keyboard.press('Enter');
      assert(new URL(page.url()).hash === '#main', 'the skip link did not lead to #main');
    });

    await check('searches for the image and finds its repository with its tags', async () => {
      await page.goto('/ui/');
      await page.getByLabel('Search repositories').fill('app');
      await page.getByLabel('Search repositories').press('Enter');
      await page.getByRole('heading', { name: /repositor(y|ies) match/ }).waitFor();
      await page.getByRole('link', { name: 'team/app', exact: true }).waitFor();
      await screenshot(page, 'search');
    });

    await check('opens the repository: tags with digest, size and platforms, and pull commands for this host', async () => {
      await page.getByRole('link', { name: 'team/app', exact: true }).click();
      await page.getByRole('heading', { level: 1, name: 'team/app' }).waitFor();
      await page.getByRole('rowheader', { name: 'v1' }).waitFor();
      await page.getByRole('rowheader', { name: 'v2' }).waitFor();
      await page.getByText('linux/amd64').first().waitFor();
      await page.getByText(`docker pull ${hostOf(served)}/team/app:`).first().waitFor();
      await page.getByText(`podman pull ${hostOf(served)}/team/app:`).first().waitFor();
      await page.getByText(`crane pull ${hostOf(served)}/team/app:`).first().waitFor();
      assert(await page.evaluate("document.activeElement?.id === 'page-heading'"), 'focus did not move to the new page heading');
      await screenshot(page, 'repository');
    });

    await check("opens the image: its layers, its config's entrypoint, environment and history, and its referrer", async () => {
      await page.getByRole('rowheader', { name: 'v1' }).getByRole('link').click();
      await page.getByRole('region', { name: 'Layers' }).getByText('2 layers, 43 KB in all.').waitFor();
      const config = page.getByRole('region', { name: 'Config' });
      await config.getByText('["/usr/local/bin/app"]').waitFor();
      await config.getByText('APP_VERSION=v1').waitFor();
      await config.getByText('COPY app /usr/local/bin/app').waitFor();
      await page.getByRole('region', { name: 'Referrers' }).getByRole('link', { name: 'application/spdx+json' }).waitFor();
      await screenshot(page, 'image', { fullPage: true });
    });

    await check("opens a multi-platform image: its platforms, and a platform's layers in place", async () => {
      await page.goto('/ui/repositories/team/app/-/manifests/multi');
      await page.getByRole('link', { name: 'linux/arm64' }).waitFor();
      await page.getByText('Layers of linux/amd64').click();
      await page.locator('details[open]').getByText('2 layers, 43 KB in all.').waitFor();
      await screenshot(page, 'image-index', { fullPage: true });
      await page.goBack();
      await page.getByRole('region', { name: 'Referrers' }).getByRole('link', { name: 'application/spdx+json' }).waitFor();
    });

    await check("opens the referrer and reads its JSON in the viewer", async () => {
      await page.getByRole('region', { name: 'Referrers' }).getByRole('link', { name: 'application/spdx+json' }).click();
      await page.getByRole('region', { name: 'Artifact' }).waitFor();
      await page.getByRole('region', { name: 'Files' }).getByRole('link', { name: /view JSON/ }).click();
      const content = page.getByLabel('Content');
      await content.waitFor();
      const text = (await content.textContent()) ?? '';
      assert(text.includes('"spdxVersion": "SPDX-2.3"') && text.includes('"name": "zlib"'), `the viewer shows ${text.slice(0, 200)}`);
      await screenshot(page, 'artifact-viewer');
    });

    await check('deletes a tag, only after the confirmation', async () => {
      await page.goto('/ui/repositories/team/app');
      await page.getByRole('button', { name: 'Delete tag v2' }).click();
      const dialog = page.getByRole('alertdialog', { name: 'Delete tag v2?' });
      await dialog.waitFor();
      await page.waitForFunction("document.activeElement?.textContent === 'Cancel'", undefined, { timeout: 2_000 }).catch(() => {
        throw new Error('the dialog did not start on Cancel');
      });
      await screenshot(page, 'delete-tag');
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'detached' });
      assert((await admin.getManifest('team/app', 'v2')).status === 200, 'Escape deleted the tag');
      await page.getByRole('button', { name: 'Delete tag v2' }).click();
      await dialog.getByRole('button', { name: 'Delete tag' }).click();
      await page.getByText('Deleted tag v2.').waitFor();
      await page.getByRole('rowheader', { name: 'v2' }).waitFor({ state: 'detached' });
      assert((await admin.getManifest('team/app', 'v2')).status === 404, 'the tag is still there');
      assert((await admin.getManifest('team/app', 'v1')).status === 200, 'another tag went too');
    });

    await check("creates a robot and shows its secret once, with a copy button and a warning", async () => {
      await page.goto('/ui/admin/robots');
      await page.getByLabel('Name', { exact: true }).fill('ci');
      await page.getByRole('button', { name: 'Create robot' }).click();
      const panel = page.getByRole('region', { name: 'Robot ci created' });
      await panel.waitFor();
      await panel.getByText('shown only this once', { exact: false }).waitFor();
      await panel.getByRole('button', { name: 'Copy the secret' }).waitFor();
      robotSecret = ((await panel.locator('.secret-value').textContent()) ?? '').trim();
      assert(robotSecret.startsWith('lrs_'), `the secret shown is ${robotSecret.slice(0, 8)}…`);
      await screenshot(page, 'robot-secret', { mask: ['.secret-value'] });
      await panel.getByRole('button', { name: /I have stored it/ }).click();
      await panel.waitFor({ state: 'detached' });
      assert(!((await page.content()).includes(robotSecret)), 'the secret is still in the page');
      await page.getByRole('rowheader', { name: 'robot$ci' }).waitFor();
    });

    await check('grants the robot push on the team namespace', async () => {
      await page.goto('/ui/admin/namespaces');
      await page.getByLabel('Namespace', { exact: true }).selectOption('team');
      await page.getByLabel('Principal').fill('robot:ci');
      await page.getByLabel('Role', { exact: true }).selectOption('push');
      await page.getByRole('button', { name: 'Grant' }).click();
      await page.getByText('robot:ci', { exact: true }).waitFor();
    });

    const feed = await newPage();
    await check('the live feed connects', async () => {
      await feed.goto('/ui/');
      await feed.getByRole('link', { name: 'Sign in' }).click();
      await feed.getByLabel('Username').fill(ADMIN.user);
      await feed.getByLabel('Password or personal access token').fill(ADMIN.password);
      await feed.getByRole('button', { name: 'Sign in' }).click();
      await feed.getByText(`Signed in as ${ADMIN.user}`).waitFor();
      await feed.getByRole('link', { name: 'Live feed' }).click();
      await feed.getByText('Connected', { exact: false }).waitFor();
    });

    await check("the robot's secret pushes an image (skopeo, or a token at /token without it)", async () => {
      assert(robotSecret, 'no robot secret (the robot check failed)');
      const skopeo = ['/usr/bin/skopeo', '/usr/local/bin/skopeo'].find((p) => existsSync(p));
      if (skopeo) {
        await promisify(execFile)(
          skopeo,
          [
            'copy',
            '--src-tls-verify=false',
            '--dest-tls-verify=false',
            '--src-creds',
            `robot$ci:${robotSecret}`,
            '--dest-creds',
            `robot$ci:${robotSecret}`,
            `docker://${hostOf(served)}/team/app:v1`,
            `docker://${hostOf(served)}/team/app:from-robot`,
          ],
          { timeout: 60_000 },
        );
      } else {
        const token = await fetch(`${served.url}/token?service=lading&scope=repository:team/app:pull,push`, {
          headers: { Authorization: `Basic ${Buffer.from(`robot$ci:${robotSecret}`).toString('base64')}` },
        });
        assert(token.status === 200, `/token answered ${token.status}`);
        const robot = createRegistryClient({ url: served.url, credentials: { username: 'robot$ci', password: robotSecret } });
        try {
          await push(robot, 'team/app', 'from-robot', testImage('robot'));
        } finally {
          await robot.close();
        }
      }
      assert((await admin.getManifest('team/app', 'from-robot')).status === 200, 'the robot push left no tag');
    });

    await check('sees the push appear in the live feed', async () => {
      // skopeo copies a manifest the repository holds already: the push is a tag's update.
      const item = feed.getByRole('log').getByRole('listitem').filter({ hasText: 'team/app:from-robot' }).first();
      await item.waitFor();
      const text = (await item.textContent()) ?? '';
      assert(/^(manifest pushed|tag updated) team\/app:from-robot .* by robot\$ci$/.test(text), `the feed says: ${text}`);
      await screenshot(feed, 'live-feed');
    });

    const anonymous = await newPage();
    await check('an anonymous visitor sees no private repository in the list or the search', async () => {
      await anonymous.goto('/ui/');
      await anonymous.getByRole('rowheader', { name: 'public/hello' }).waitFor();
      assert((await anonymous.getByRole('rowheader', { name: 'team/app' }).count()) === 0, 'team/app is listed');
      await anonymous.getByLabel('Search repositories').fill('app');
      await anonymous.getByLabel('Search repositories').press('Enter');
      await anonymous.getByRole('heading', { name: /match/ }).waitFor();
      assert((await anonymous.getByRole('link', { name: 'team/app' }).count()) === 0, 'the search finds team/app');
      await anonymous.goto('/ui/repositories/team/app');
      await anonymous.getByRole('alert').waitFor();
      assert((await anonymous.getByRole('rowheader', { name: 'v1' }).count()) === 0, 'the private tags are shown');
      assert((await anonymous.getByRole('button', { name: /Delete/ }).count()) === 0, 'an anonymous visitor is offered a deletion');
    });

    await check("an anonymous visitor's live feed carries only public repositories", async () => {
      await anonymous.goto('/ui/feed');
      await anonymous.getByText('Connected', { exact: false }).waitFor();
      await push(admin, 'team/app', 'secret', testImage('secret'));
      await push(admin, 'public/hello', 'v2', testImage('hello-2'));
      const log = anonymous.getByRole('log');
      await log.getByText('public/hello:v2').first().waitFor();
      // The feed keeps each repository's order, and the private push came first: it would be there by now.
      await feed.getByRole('log').getByText('team/app:secret').first().waitFor();
      assert((await log.getByText(/team\/app/).count()) === 0, 'the anonymous feed shows team/app');
    });

    await check('reads well on a phone: no sideways scrolling of the page', async () => {
      const phone = await newPage({ width: 390, height: 844 });
      await phone.goto('/ui/repositories/public/hello');
      await phone.getByRole('rowheader', { name: 'latest' }).waitFor();
      const overflow = Number(await phone.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth'));
      assert(overflow <= 1, `the page is ${overflow}px wider than the phone`);
      await screenshot(phone, 'phone-repository', { fullPage: true });
    });

    await check('the admin pages render for an admin (users, namespaces)', async () => {
      await page.goto('/ui/admin/users');
      await page.getByRole('rowheader', { name: ADMIN.user }).waitFor();
      await page.goto('/ui/admin/namespaces');
      await page.getByRole('heading', { name: 'Namespaces', exact: true }).waitFor();
      await screenshot(page, 'admin-namespaces', { fullPage: true });
    });

    await check("changes a namespace's immutable tags: added (a push that would move one is refused), a bad pattern refused in words, removed", async () => {
      await page.goto('/ui/admin/namespaces');
      const rules = page.getByRole('region', { name: 'Tag rules of team' });
      await rules.getByLabel('Pattern for team').fill('v*');
      await rules.getByRole('button', { name: 'Add pattern to team' }).click();
      await rules.getByRole('list', { name: 'Immutable tags' }).getByText('v*', { exact: true }).waitFor();
      const moved = testImage('moved');
      const status = await pushImage(admin, 'team/app', 'v1', moved.manifest, moved.blobs);
      assert(status === 403, `moving the immutable tag team/app:v1 answered ${status}`);
      // From the keyboard: Enter in the pattern submits it; the API's refusal is said in words, nothing changes.
      await rules.getByLabel('Pattern for team').fill('v1/beta');
      await rules.getByLabel('Pattern for team').press('Enter');
      const refused = ((await rules.getByRole('alert').textContent()) ?? '').trim();
      assert(/^Adding v1\/beta to the immutable tags of team was refused: immutableTags must be a list of at most \d+ tag globs/.test(refused), `the refusal says: ${refused}`);
      assert((await rules.getByRole('list', { name: 'Immutable tags' }).getByRole('listitem').count()) === 1, 'the refused pattern is listed');
      await rules.getByRole('button', { name: 'Remove v* from the immutable tags of team' }).click();
      await rules.getByText('No tag is immutable.').waitFor();
      const listed = await fetch(`${served.url}/admin/v1/namespaces`, { headers: { Authorization: `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}` } });
      const namespaces = (await listed.json()) as { namespaces: Array<{ prefix: string; immutableTags: string[] }> };
      const team = namespaces.namespaces.find((n) => n.prefix === 'team');
      assert(team?.immutableTags.length === 0, `the registry still holds the rules ${JSON.stringify(team?.immutableTags)}`);
    });

    await check("creates a webhook: its signing secret shown once, then rotated (a new one, shown once)", async () => {
      await page.goto('/ui/admin/webhooks');
      await page.getByText('No webhooks yet.').waitFor();
      await page.getByLabel('Name', { exact: true }).fill('deploys');
      await page.getByLabel('URL', { exact: true }).fill(WEBHOOK_URL);
      await page.getByLabel('Namespace (optional)').fill('team');
      await page.getByRole('group', { name: 'Event types' }).getByLabel('manifest pushed').check();
      await page.getByRole('button', { name: 'Create webhook' }).click();
      const panel = page.getByRole('region', { name: 'Webhook deploys created: its signing secret' });
      await panel.waitFor();
      const secret = ((await panel.locator('.secret-value').textContent()) ?? '').trim();
      assert(secret.startsWith('whsec_'), `the secret shown is ${secret.slice(0, 8)}…`);
      await page.getByRole('rowheader', { name: 'deploys' }).waitFor();
      await screenshot(page, 'admin-webhooks', { fullPage: true, mask: ['.secret-value'] });
      await panel.getByRole('button', { name: /I have stored it/ }).click();
      await panel.waitFor({ state: 'detached' });
      assert(!(await page.content()).includes(secret), 'the secret is still in the page');
      await page.getByRole('button', { name: 'Rotate secret of deploys' }).click();
      await page.getByRole('alertdialog', { name: 'Rotate the secret of deploys?' }).getByRole('button', { name: 'Rotate secret' }).click();
      const rotated = page.getByRole('region', { name: 'New signing secret of deploys' });
      await rotated.waitFor();
      const next = ((await rotated.locator('.secret-value').textContent()) ?? '').trim();
      assert(next.startsWith('whsec_') && next !== secret, 'the rotation showed no new secret');
      await rotated.getByRole('button', { name: /I have stored it/ }).click();
    });

    await check("shows the collector's status, and a collection asked for in its list with who asked", async () => {
      await page.goto('/ui/admin/collector');
      await page.getByRole('table', { name: 'Queued reviews' }).waitFor();
      await page.getByText('None since the registry started.').waitFor();
      await page.getByRole('button', { name: 'Collect now' }).click();
      await page.getByRole('alertdialog', { name: 'Collect garbage now?' }).getByRole('button', { name: 'Collect now' }).click();
      await page.getByText('The collection finished', { exact: false }).waitFor();
      const runs = page.getByRole('table', { name: 'Collections asked for, newest first' });
      await runs.getByRole('cell', { name: ADMIN.user, exact: true }).waitFor();
      await screenshot(page, 'admin-collector', { fullPage: true });
    });

    await check('reads the audit log: the webhook created above, by the admin, found by the type filter', async () => {
      await page.goto('/ui/admin/audit');
      await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
      await page.getByLabel('Type').selectOption('io.lading.audit.admin');
      await page.getByLabel('Actor').fill(ADMIN.user);
      await Promise.all([page.waitForResponse((r) => r.url().includes('type=io.lading.audit.admin')), page.getByRole('button', { name: 'Show entries' }).click()]);
      // The page shown before stays until the filtered one is drawn.
      await page.getByRole('cell', { name: 'login', exact: true }).first().waitFor({ state: 'detached' });
      const created = page.getByRole('row').filter({ hasText: /POST \/admin\/v1\/webhooks\/? \(/ });
      await created.first().waitFor();
      assert((await page.getByRole('row').filter({ hasText: 'login' }).count()) === 0, 'the type filter let a login through');
      await created.first().getByRole('button', { name: /Show/ }).click();
      const record = page.getByRole('region', { name: /^The record of/ });
      await record.waitFor();
      assert(((await record.textContent()) ?? '').includes('[redacted]'), "the webhook's secret is not redacted in its record");
      await screenshot(page, 'admin-audit', { fullPage: true });
    });

    await check('the audit log lists newest first and keeps its filters in the URL: a reload shows them, back returns', async () => {
      // The page the check above left: the admin changes by the admin.
      const url = new URL(page.url());
      assert(url.searchParams.get('type') === 'io.lading.audit.admin' && url.searchParams.get('actor') === ADMIN.user, `the filters are not in the URL: ${url.search}`);
      const actions = async () => (await page.getByRole('row').allTextContents()).slice(1);
      const order = (rows: string[]) => [rows.findIndex((r) => r.includes('gc/collect')), rows.findIndex((r) => /POST \/admin\/v1\/webhooks\/? \(/.test(r))];
      // The collection was asked for after the webhook was created: newest first, it comes first.
      const [collect, webhook] = order(await actions());
      assert(collect >= 0 && webhook > collect, `newest first, the collection (row ${collect}) is not above the webhook's creation (row ${webhook})`);
      await page.reload();
      await page.getByRole('row').filter({ hasText: /POST \/admin\/v1\/webhooks\/? \(/ }).first().waitFor();
      assert((await page.getByLabel('Type').inputValue()) === 'io.lading.audit.admin', 'the reload lost the type filter');
      assert((await page.getByLabel('Actor').inputValue()) === ADMIN.user, 'the reload lost the actor filter');
      assert((await page.getByRole('row').filter({ hasText: 'login' }).count()) === 0, 'the reload shows logins');
      await page.getByLabel('Order').selectOption('oldest');
      await Promise.all([page.waitForResponse((r) => r.url().includes('order=oldest')), page.getByRole('button', { name: 'Show entries' }).click()]);
      await page.getByText(/oldest first\.$/).waitFor();
      const [collectOldest, webhookOldest] = order(await actions());
      assert(webhookOldest >= 0 && collectOldest > webhookOldest, 'oldest first, the webhook is not above the collection');
      await page.goBack();
      await page.getByText(/newest first\.$/).waitFor();
      assert((await page.getByLabel('Order').inputValue()) === 'newest', 'back did not return to newest first');
      assert((await page.getByLabel('Type').inputValue()) === 'io.lading.audit.admin', 'back lost the type filter');
      await page.goBack();
      await page.waitForURL((u) => u.pathname === '/ui/admin/audit' && u.search === '');
      await page.getByRole('cell', { name: 'login', exact: true }).first().waitFor();
      assert((await page.getByLabel('Type').inputValue()) === '', 'back to the unfiltered log kept the type filter');
    });

    await check('the new admin pages read well on a phone: no sideways scrolling of the page', async () => {
      const phone = await newPage({ width: 390, height: 844 });
      await phone.goto('/ui/sign-in');
      await phone.getByLabel('Username').fill(ADMIN.user);
      await phone.getByLabel('Password or personal access token').fill(ADMIN.password);
      await phone.getByRole('button', { name: 'Sign in' }).click();
      await phone.getByText(`Signed in as ${ADMIN.user}`).waitFor();
      for (const [section, ready] of [
        ['webhooks', 'Create webhook'],
        ['audit', 'Show entries'],
        ['collector', 'Refresh the status'],
      ] as const) {
        await phone.goto(`/ui/admin/${section}`);
        await phone.getByRole('button', { name: ready }).waitFor();
        const overflow = Number(await phone.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth'));
        assert(overflow <= 1, `the ${section} page is ${overflow}px wider than the phone`);
      }
    });

    await check('an admin deletes a whole repository through the dialog', async () => {
      await page.goto('/ui/repositories/team/old');
      await page.getByRole('button', { name: 'Delete repository' }).click();
      const dialog = page.getByRole('alertdialog', { name: 'Delete the repository team/old?' });
      await dialog.getByRole('button', { name: 'Delete repository' }).click();
      await page.getByRole('heading', { level: 1, name: 'Repositories' }).waitFor();
      assert((await admin.getManifest('team/old', 'v1')).status === 404, 'team/old is still there');
      assert((await page.getByRole('rowheader', { name: 'team/old' }).count()) === 0, 'team/old is still listed');
    });

    await check("draws the insights charts as named images, the namespaces' storage among them for an admin", async () => {
      await page.goto('/ui/insights');
      await page.getByRole('img', { name: 'Storage per namespace' }).waitFor();
      await page.getByRole('img', { name: 'Size of tagged images by namespace' }).waitFor();
      await page.getByRole('img', { name: /Tags pushed per day/ }).waitFor();
      await screenshot(page, 'insights', { fullPage: true });
    });

    await check("a namespace admin signs in and sees only its namespace's admin pages", async () => {
      await adminApi(served, 'POST', '/users', { name: 'tess', password: 'tess-password-1' });
      await adminApi(served, 'POST', '/grants', { prefix: 'team', principal: 'user:tess', role: 'admin' });
      const tess = await newPage();
      await tess.goto('/ui/sign-in');
      await tess.getByLabel('Username').fill('tess');
      await tess.getByLabel('Password or personal access token').fill('tess-password-1');
      await tess.getByRole('button', { name: 'Sign in' }).click();
      await tess.getByText('Signed in as tess').waitFor();
      await tess.getByRole('link', { name: 'Admin' }).click();
      const sections = tess.getByRole('navigation', { name: 'Admin sections' });
      await tess.getByRole('heading', { name: /^team / }).waitFor();
      const links = await sections.getByRole('link').allTextContents();
      assert(JSON.stringify(links) === JSON.stringify(['Namespaces and grants', 'Robot accounts', 'Webhooks', 'Audit log']), `the admin sections are ${links.join(', ')}`);
      assert((await tess.getByRole('heading', { name: /^public / }).count()) === 0, 'another namespace is listed');
      assert((await tess.getByRole('heading', { name: 'New namespace' }).count()) === 0, 'creating a namespace is offered');
      // Its namespace's tag rules are its to change.
      const rules = tess.getByRole('region', { name: 'Tag rules of team' });
      await rules.getByLabel('Pattern for team').fill('stable');
      await rules.getByLabel('Add to the rules of team').selectOption('immutableTagExceptions');
      await rules.getByRole('button', { name: 'Add pattern to team' }).click();
      await rules.getByRole('list', { name: 'Exceptions' }).getByText('stable', { exact: true }).waitFor();
      await rules.getByRole('button', { name: 'Remove stable from the exceptions of team' }).click();
      await rules.getByText('No exceptions.').waitFor();
      await tess.goto('/ui/admin/robots');
      await tess.getByLabel('Name', { exact: true }).fill('builder');
      await tess.getByRole('button', { name: 'Create robot' }).click();
      await tess.getByRole('region', { name: 'Robot team+builder created' }).getByText('robot$team+builder').waitFor();
      await tess.getByRole('button', { name: /I have stored it/ }).click();
      await tess.goto('/ui/admin/users');
      await tess.getByText(/This page is for global administrators/).waitFor();
      await screenshot(tess, 'admin-namespace-admin', { fullPage: true });
    });
  } finally {
    for (const context of contexts) await context.close().catch(() => undefined);
    await admin.close();
    await served.close();
  }
}

// ---- the scenario with auth off ----------------------------------------------------------------------------------

async function withoutAuth(browser: Browser): Promise<void> {
  const served = await serve(false);
  const context = await browser.newContext({ baseURL: served.url, viewport: { width: 1280, height: 860 } });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  try {
    await push(served.client, 'team/app', 'v1', testImage('v1'));
    const page = watch(await context.newPage());
    await check('with auth off, browses and searches without signing in', async () => {
      await page.goto('/ui/');
      await page.getByRole('rowheader', { name: 'team/app' }).waitFor();
      assert((await page.getByRole('link', { name: 'Sign in' }).count()) === 0, 'a sign-in link is offered with auth off');
      await page.getByLabel('Search repositories').fill('app');
      await page.getByLabel('Search repositories').press('Enter');
      await page.getByRole('link', { name: 'team/app', exact: true }).click();
      await page.getByRole('rowheader', { name: 'v1' }).waitFor();
      await page.getByRole('button', { name: 'Delete tag v1' }).waitFor();
      // The admin API wants an administrator's credentials, which the console cannot send with auth off: Admin says so.
      await page.getByRole('link', { name: 'Admin' }).click();
      await page.getByRole('heading', { name: 'Authentication is off on this registry' }).waitFor();
      assert((await page.getByRole('navigation', { name: 'Admin sections' }).count()) === 0, 'the admin sections are offered with auth off');
      await screenshot(page, 'admin-auth-off');
      await page.goto('/ui/insights');
      await page.getByRole('img', { name: 'Size of tagged images by namespace' }).waitFor();
    });
  } finally {
    await context.close();
    await served.close();
  }
}

void run('the scenario', async (browser) => {
  await withAuth(browser);
  await withoutAuth(browser);
  await check('no page logged an error (a Content-Security-Policy violation among them) or asked another origin', async () => {
    assert(pageErrors.length === 0, pageErrors.slice(0, 5).join('\n'));
  });
});
