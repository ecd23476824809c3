/**
 * Inspects an image's configuration (the OCI image config / Docker container config JSON): platform, the user the
 * container runs as, exposed ports, and environment variables whose names look like secrets. Values of environment
 * variables are never copied into a report: a report is readable by anyone who can pull the image.
 */

/** What the configuration says. */
export interface ConfigFindings {
  os: string | null;
  architecture: string | null;
  variant: string | null;
  /** The `User` field as written (empty when unset). */
  user: string;
  /** Whether the container's processes run as uid 0 (the default when `User` is empty). */
  runsAsRoot: boolean;
  exposedPorts: string[];
  /** Names (never values) of non-empty environment variables that look like credentials. */
  secretLikeEnv: string[];
  entrypoint: string[];
  cmd: string[];
}

/** Environment variable names that usually hold credentials. */
const SECRET_NAME = /(SECRET|PASSWORD|PASSWD|PASSPHRASE|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL)/i;
/** ...and names that merely point at one (a file path, a key id), which are not secrets themselves. */
const POINTER_NAME = /(_FILE|_PATH|_DIR|_ID|_URL|_TYPE)$/i;

/** The user part of `User` (`user`, `uid`, `user:group`, `uid:gid`) names root. */
export function isRootUser(user: string): boolean {
  const name = user.split(':')[0].trim();
  return name === '' || name === 'root' || name === '0';
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** Reads the findings from a parsed configuration document; unknown shapes give empty findings, not errors. */
export function inspectConfig(doc: unknown): ConfigFindings {
  const root = (doc && typeof doc === 'object' ? doc : {}) as Record<string, unknown>;
  const config = (root.config && typeof root.config === 'object' ? root.config : {}) as Record<string, unknown>;
  const user = typeof config.User === 'string' ? config.User : '';
  const secretLikeEnv: string[] = [];
  for (const pair of strings(config.Env)) {
    const eq = pair.indexOf('=');
    const name = eq === -1 ? pair : pair.slice(0, eq);
    const value = eq === -1 ? '' : pair.slice(eq + 1);
    if (value !== '' && SECRET_NAME.test(name) && !POINTER_NAME.test(name)) secretLikeEnv.push(name);
  }
  const ports = config.ExposedPorts && typeof config.ExposedPorts === 'object' ? Object.keys(config.ExposedPorts as object) : [];
  return {
    os: stringOrNull(root.os),
    architecture: stringOrNull(root.architecture),
    variant: stringOrNull(root.variant),
    user,
    runsAsRoot: isRootUser(user),
    exposedPorts: ports.sort(),
    secretLikeEnv: secretLikeEnv.sort(),
    entrypoint: strings(config.Entrypoint),
    cmd: strings(config.Cmd),
  };
}
