/** Pushes a small fresh image (a config blob, a layer and a manifest) by tag to a registry over HTTP. */
import { TestManifest, imageManifest, makeBlob } from '@lading/testing';

async function ok(res: Response, what: string): Promise<void> {
  if (res.status >= 300) throw new Error(`${what}: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

/** Pushes an image to `<baseUrl>/v2/<repository>` by tag; resolves with the manifest. */
export async function pushImage(baseUrl: string, repository: string, tag: string, headers: Record<string, string> = {}): Promise<TestManifest> {
  const config = makeBlob(`{"architecture":"amd64","os":"linux","nonce":"${Math.random()}"}`);
  const layer = makeBlob(256);
  for (const blob of [config, layer]) {
    await ok(
      await fetch(`${baseUrl}/v2/${repository}/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: blob.data }),
      'blob upload',
    );
  }
  const manifest = imageManifest(config, [layer]);
  await ok(await fetch(`${baseUrl}/v2/${repository}/manifests/${tag}`, { method: 'PUT', headers: { ...headers, 'content-type': manifest.mediaType }, body: manifest.body }), 'manifest put');
  return manifest;
}
