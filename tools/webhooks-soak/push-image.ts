/** Pushes a small fresh image (a config blob, a layer and a manifest) by tag through a registry client. */
import { RegistryClient, expectAnswer } from '@lading/client';
import { TestManifest, imageManifest, makeBlob } from '@lading/testing';

/** Pushes a fresh image to `repository` by tag; resolves with the manifest, throws unless every push answered 201. */
export async function pushImage(client: RegistryClient, repository: string, tag: string): Promise<TestManifest> {
  const config = makeBlob(`{"architecture":"amd64","os":"linux","nonce":"${Math.random()}"}`);
  const layer = makeBlob(256);
  const manifest = imageManifest(config, [layer]);
  expectAnswer(await client.pushImage(repository, tag, manifest, [config, layer]), 201, `push of ${repository}:${tag}`);
  return manifest;
}
