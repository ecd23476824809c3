/** Which Lading this is: the name and version of the repository's package.json, read once per process. */
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The name, version and (in a bundle built from a git checkout) the commit of the running Lading. */
export interface LadingVersion {
  name: string;
  version: string;
  /** The abbreviated commit the bundle was built from; absent when run from the sources or built without git. */
  commit?: string;
}

/** Set by the bundler (tools/build/bundle.ts) to the commit it built from; undeclared when running from the sources. */
declare const __LADING_COMMIT__: string | undefined;

/** The repository's package.json: the one place the version is written. */
const PACKAGE_JSON = path.join(__dirname, '..', '..', '..', 'package.json');

let known: LadingVersion | undefined;

/** The running Lading's name and version, from package.json (read on the first call, then remembered). */
export function ladingVersion(): LadingVersion {
  if (!known) {
    const { name, version } = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { name: string; version: string };
    const commit = typeof __LADING_COMMIT__ === 'string' && __LADING_COMMIT__ ? __LADING_COMMIT__ : undefined;
    known = commit ? { name, version, commit } : { name, version };
  }
  return known;
}

/** The version as one line: `lading 0.1.0`, with ` (commit abc1234)` when the bundle knows it. */
export function versionLine(v: LadingVersion = ladingVersion()): string {
  return `${v.name} ${v.version}${v.commit ? ` (commit ${v.commit})` : ''}`;
}
