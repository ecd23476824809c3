/**
 * @jest-environment jsdom
 */
import { screen } from '@testing-library/preact';
import { SIGNED_IN, fakeServer } from '../../test/fake-server';
import { renderWithSession } from '../../test/render';
import { BlobPage, prettyJson } from './blob';

const DIGEST = `sha256:${'6'.repeat(64)}`;

describe('the JSON artifact viewer', () => {
  it('fetches the blob through the registry and shows it pretty-printed, with a download link', async () => {
    const server = fakeServer(SIGNED_IN, { [`GET /v2/team/app/blobs/${DIGEST}`]: { text: '{"spdxVersion":"SPDX-2.3","packages":[{"name":"zlib"}]}' } });
    renderWithSession(server, <BlobPage name="team/app" digest={DIGEST} mediaType="application/spdx+json" />);
    const content = await screen.findByLabelText('Content');
    expect(content.textContent).toBe(JSON.stringify({ spdxVersion: 'SPDX-2.3', packages: [{ name: 'zlib' }] }, null, 2));
    expect(screen.getByRole('link', { name: 'Download' }).getAttribute('href')).toBe(`/v2/team/app/blobs/${DIGEST}`);
  });

  it('shows content that is not JSON as text, saying so', () => {
    expect(prettyJson('not json')).toEqual({ text: 'not json', json: false });
  });
});
