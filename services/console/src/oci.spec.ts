import { isJsonMediaType, platformOf, pullCommands, registryPath } from './oci';

describe('reading images through the registry API', () => {
  it("sends a digest's colon as it is, since the registry's routes do not decode %3A", () => {
    expect(registryPath('team/app', 'blobs', 'sha256:abc')).toBe('/v2/team/app/blobs/sha256:abc');
    expect(registryPath('team/app', 'manifests', 'v1.2_x-y')).toBe('/v2/team/app/manifests/v1.2_x-y');
    expect(registryPath('team/app', 'manifests', '../x')).toBe('/v2/team/app/manifests/..%2Fx');
  });

  it('pulls a tag with name:tag and a digest with name@digest, for docker, podman and crane', () => {
    expect(pullCommands('reg.test:5000', 'team/app', 'v1')).toEqual([
      { client: 'docker', command: 'docker pull reg.test:5000/team/app:v1' },
      { client: 'podman', command: 'podman pull reg.test:5000/team/app:v1' },
      { client: 'crane', command: 'crane pull reg.test:5000/team/app:v1 app.tar' },
    ]);
    expect(pullCommands('reg.test', 'a', 'sha256:abc')[0].command).toBe('docker pull reg.test/a@sha256:abc');
  });

  it('tells JSON media types, and writes platforms as os/architecture/variant', () => {
    expect(['application/json', 'application/spdx+json', 'application/vnd.cyclonedx+json', 'text/spdx'].map(isJsonMediaType)).toEqual([true, true, true, false]);
    expect(platformOf({ mediaType: 'x', digest: 'd', size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } })).toBe('linux/arm/v7');
    expect(platformOf({ mediaType: 'x', digest: 'd', size: 1 })).toBe('unknown');
  });
});
