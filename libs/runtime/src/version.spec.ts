import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ladingVersion, versionLine } from './version';

describe('ladingVersion', () => {
  it("is the name and version of the repository's package.json, without a commit when run from the sources", () => {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { name: string; version: string };
    expect(ladingVersion()).toEqual({ name: pkg.name, version: pkg.version });
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('reads package.json once and hands back the same answer', () => {
    expect(ladingVersion()).toBe(ladingVersion());
  });
});

describe('versionLine', () => {
  it('prints the name and version, and the commit when known', () => {
    expect(versionLine({ name: 'lading', version: '0.1.0' })).toBe('lading 0.1.0');
    expect(versionLine({ name: 'lading', version: '0.1.0', commit: 'abc1234' })).toBe('lading 0.1.0 (commit abc1234)');
  });
});
