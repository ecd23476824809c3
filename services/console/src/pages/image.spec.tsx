/**
 * @jest-environment jsdom
 */
import { fireEvent, screen, within } from '@testing-library/preact';
import { ANONYMOUS, SIGNED_IN, fakeServer } from '../../test/fake-server';
import { renderWithSession } from '../../test/render';
import { ImagePage } from './image';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const INDEX = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [
    { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('1'), size: 500, platform: { os: 'linux', architecture: 'amd64' } },
    { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('2'), size: 501, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ],
};
const MANIFEST = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('c'), size: 300 },
  layers: [
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('3'), size: 3_000_000 },
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('4'), size: 2_000 },
  ],
};
const CONFIG = {
  os: 'linux',
  architecture: 'amd64',
  created: '2026-11-30T08:00:00Z',
  config: { Env: ['PATH=/usr/bin', 'MODE=prod'], Entrypoint: ['/bin/app'], Cmd: ['--serve'], Labels: { 'org.opencontainers.image.source': 'https://example.test/app' } },
  history: [{ created_by: 'ADD rootfs.tar /' }, { created_by: 'CMD ["--serve"]', empty_layer: true }],
};
const SBOM = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: d('5'),
  size: 700,
  artifactType: 'application/spdx+json',
  annotations: { 'org.opencontainers.image.created': '2026-12-01T00:00:00Z' },
};
const manifestRoute = (body: unknown, digest: string) => ({ json: body, headers: { 'Docker-Content-Digest': digest, 'Content-Type': (body as { mediaType: string }).mediaType } });

describe('the image page', () => {
  it("lists an index's platforms, each linking to its manifest", async () => {
    const server = fakeServer(SIGNED_IN, {
      'GET /v2/team/app/manifests/v1': manifestRoute(INDEX, d('0')),
      [`GET /v2/team/app/referrers/${d('0')}`]: { json: { schemaVersion: 2, manifests: [] } },
    });
    renderWithSession(server, <ImagePage name="team/app" reference="v1" />);
    const amd = await screen.findByRole('link', { name: 'linux/amd64' });
    expect(amd.getAttribute('href')).toBe(`/ui/repositories/team/app/-/manifests/${encodeURIComponent(d('1'))}`);
    expect(screen.getByRole('link', { name: 'linux/arm64/v8' })).toBeTruthy();
    expect(await screen.findByText(/Nothing refers to this manifest/)).toBeTruthy();
    const accept = server.sent('GET').find((r) => r.path.startsWith('/v2/team/app/manifests/'))?.headers.Accept ?? '';
    expect(accept).toContain('application/vnd.oci.image.index.v1+json');
    expect(accept).toContain('application/vnd.docker.distribution.manifest.v2+json');
  });

  it("shows a platform's layers in the index's page when its disclosure is opened, fetching them only then", async () => {
    const server = fakeServer(SIGNED_IN, {
      'GET /v2/team/app/manifests/v1': manifestRoute(INDEX, d('0')),
      [`GET /v2/team/app/referrers/${d('0')}`]: { json: { schemaVersion: 2, manifests: [] } },
      [`GET /v2/team/app/manifests/${d('1')}`]: manifestRoute(MANIFEST, d('1')),
    });
    renderWithSession(server, <ImagePage name="team/app" reference="v1" />);
    const summary = await screen.findByText('Layers of linux/amd64');
    expect(server.sent().some((r) => r.path === `/v2/team/app/manifests/${d('1')}`)).toBe(false);
    const details = summary.closest('details') as HTMLDetailsElement;
    details.open = true;
    fireEvent(details, new Event('toggle'));
    expect(await within(details).findByText('2 layers, 3.0 MB in all.')).toBeTruthy();
    expect(within(details).getByText('3.0 MB')).toBeTruthy();
  });

  it("shows a manifest's layers with sizes, its config's entrypoint, environment, labels and history, and its referrers", async () => {
    const server = fakeServer(SIGNED_IN, {
      [`GET /v2/team/app/manifests/${d('1')}`]: manifestRoute(MANIFEST, d('1')),
      [`GET /v2/team/app/blobs/${d('c')}`]: { json: CONFIG },
      [`GET /v2/team/app/referrers/${d('1')}`]: { json: { schemaVersion: 2, manifests: [SBOM] } },
    });
    renderWithSession(server, <ImagePage name="team/app" reference={d('1')} />);
    const layers = await screen.findByRole('region', { name: 'Layers' });
    expect(within(layers).getByText('2 layers, 3.0 MB in all.')).toBeTruthy();
    expect(within(layers).getByText('2.0 KB')).toBeTruthy();
    const config = await screen.findByRole('region', { name: 'Config' });
    expect(within(config).getByText('["/bin/app"]')).toBeTruthy();
    expect(within(config).getByText('["--serve"]')).toBeTruthy();
    expect(within(config).getByText('MODE=prod')).toBeTruthy();
    expect(within(config).getByText('https://example.test/app')).toBeTruthy();
    expect(within(config).getByText('ADD rootfs.tar /')).toBeTruthy();
    const referrers = await screen.findByRole('region', { name: 'Referrers' });
    expect(await within(referrers).findByRole('link', { name: 'application/spdx+json' })).toBeTruthy();
    expect(within(referrers).getByText('2026-12-01T00:00:00Z')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Delete manifest' })).toBeTruthy();
  });

  it("shows an artifact's type, subject and files, JSON files linking to the viewer", async () => {
    const artifact = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/spdx+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: d('e'), size: 2 },
      layers: [{ mediaType: 'application/spdx+json', digest: d('6'), size: 1200 }],
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('1'), size: 500 },
    };
    const server = fakeServer(ANONYMOUS, {
      [`GET /v2/team/app/manifests/${d('5')}`]: manifestRoute(artifact, d('5')),
      [`GET /v2/team/app/referrers/${d('5')}`]: { json: { schemaVersion: 2, manifests: [] } },
    });
    renderWithSession(server, <ImagePage name="team/app" reference={d('5')} />);
    const section = await screen.findByRole('region', { name: 'Artifact' });
    expect(within(section).getAllByText('application/spdx+json').length).toBeGreaterThan(0);
    expect(within(section).getByRole('link', { name: 'sha256:111111111111' }).getAttribute('href')).toContain(encodeURIComponent(d('1')));
    const files = screen.getByRole('region', { name: 'Files' });
    expect(within(files).getByRole('link', { name: /view JSON/ }).getAttribute('href')).toBe(
      `/ui/repositories/team/app/-/blobs/${encodeURIComponent(d('6'))}?mediaType=${encodeURIComponent('application/spdx+json')}`,
    );
    expect(screen.queryByRole('button', { name: 'Delete manifest' })).toBeNull();
  });

  it('says so when the manifest cannot be read', async () => {
    const server = fakeServer(SIGNED_IN, { 'GET /v2/team/app/manifests/nope': { status: 404, json: { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] } } });
    renderWithSession(server, <ImagePage name="team/app" reference="nope" />);
    expect((await screen.findByRole('alert')).textContent).toContain('manifest unknown');
  });
});
