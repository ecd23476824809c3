/** Loads the configuration: a YAML file (optional), then `LADING_*` environment overrides, then validation. */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { configObject, configSchema, LadingConfig, LadingConfigInput } from './schema';

/** The environment variable that names the YAML file; it is not itself a config key. */
export const CONFIG_FILE_ENV = 'LADING_CONFIG';

/**
 * A configuration that cannot be used: every problem found, each on its own line naming the key (and the `LADING_*`
 * variable that sets it) or the file and line. One problem reads as one line; several are listed under a count.
 */
export class ConfigError extends Error {
  /** Each problem, one line each. */
  readonly problems: string[];

  constructor(problems: string | string[]) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(list.length === 1 ? list[0] : `${list.length} configuration problems:\n${list.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = list;
  }
}

type Shape = Record<string, z.ZodType>;

function unwrap(schema: z.ZodType): z.ZodType {
  let current: z.ZodType = schema;
  for (;;) {
    const def = (current as unknown as { def: { type: string; innerType?: z.ZodType } }).def;
    if (def.innerType && ['default', 'prefault', 'optional', 'nullable'].includes(def.type)) current = def.innerType;
    else return current;
  }
}

function shapeOf(schema: z.ZodType): Shape | null {
  const inner = unwrap(schema);
  return inner instanceof z.ZodObject ? (inner.shape as Shape) : null;
}

/** Converts an environment string to the type the schema expects at that key. */
function coerce(leaf: z.ZodType, raw: string): unknown {
  const inner = unwrap(leaf);
  if (inner instanceof z.ZodBoolean) {
    if (/^(true|1|yes|on)$/i.test(raw)) return true;
    if (/^(false|0|no|off)$/i.test(raw)) return false;
    return raw;
  }
  if (inner instanceof z.ZodNumber) return raw.trim() === '' ? raw : Number(raw);
  if (inner instanceof z.ZodArray) return raw.split(',').map((s) => s.trim()).filter(Boolean);
  return raw;
}

/** The environment variable that sets `key` (a dotted path; list indexes map to the whole list), if the schema has it. */
export function envNameOf(key: readonly PropertyKey[]): string | undefined {
  let shape: Shape | null = configObject.shape as Shape;
  const segments: string[] = [];
  for (const segment of key) {
    if (typeof segment !== 'string' || /^\d+$/.test(segment)) break;
    if (!shape || !(segment in shape)) return undefined;
    segments.push(segment);
    shape = shapeOf(shape[segment]);
  }
  return segments.length ? `LADING_${segments.join('_').toUpperCase()}` : undefined;
}

/**
 * Applies `LADING_*` variables onto a copy of a config object: `LADING_HTTP_ADDR` sets `http.addr`; segments match
 * keys case-insensitively; an empty variable is ignored. Unknown variables are an error that names all of them.
 */
export function applyEnv(input: Record<string, unknown>, env: Record<string, string | undefined>): Record<string, unknown> {
  const { result, unknown } = overlayEnv(input, env);
  if (unknown.length) throw new ConfigError(unknown.map(unknownVariable));
  return result;
}

function unknownVariable(name: string): string {
  return `unknown configuration variable ${name}`;
}

function overlayEnv(input: Record<string, unknown>, env: Record<string, string | undefined>): { result: Record<string, unknown>; unknown: string[] } {
  const result: Record<string, unknown> = structuredClone(input);
  const unknown: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    // An empty variable counts as unset (compose files pass `${VAR:-}` through).
    if (!name.startsWith('LADING_') || name === CONFIG_FILE_ENV || value === undefined || value === '') continue;
    const segments = name.slice('LADING_'.length).toLowerCase().split('_');
    const keys: string[] = [];
    let shape: Shape | null = configObject.shape as Shape;
    for (const segment of segments) {
      const key = shape ? Object.keys(shape).find((k) => k.toLowerCase() === segment) : undefined;
      if (!shape || !key) break;
      keys.push(key);
      if (keys.length < segments.length) shape = shapeOf(shape[key]);
    }
    if (keys.length !== segments.length || !shape) {
      unknown.push(name);
      continue;
    }
    let target = result;
    for (const key of keys.slice(0, -1)) {
      const next = target[key];
      target[key] = typeof next === 'object' && next !== null ? next : {};
      target = target[key] as Record<string, unknown>;
    }
    const leaf = keys[keys.length - 1];
    target[leaf] = coerce(shape[leaf], value);
  }
  return { result, unknown };
}

/** Every problem zod found, one line each: the key, what is wrong, and the `LADING_*` variable that sets the key. */
function describeIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, ...issue.keys] : issue.path;
    const key = path.map(String).join('.') || '(root)';
    const env = issue.code === 'unrecognized_keys' ? undefined : envNameOf(path);
    return `invalid configuration at ${key}: ${issue.message}${env ? ` (environment variable ${env})` : ''}`;
  });
}

/** Validates a config object; every bad key or value is named in one error. */
export function parseConfig(input: LadingConfigInput | Record<string, unknown>): LadingConfig {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.error.issues));
  return parsed.data;
}

/** Reads a YAML configuration file: a mapping, or a ConfigError naming the file and the line of each syntax error. */
function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read configuration file ${file}: ${(err as Error).message}`);
  }
  const doc = parseDocument(text);
  if (doc.errors.length) {
    throw new ConfigError(
      doc.errors.map((e) => {
        // yaml's message repeats the position and quotes the source after it; the position alone is enough here.
        const reason = e.message.split(/ at line \d+, column \d+/)[0].split('\n')[0];
        const at = e.linePos ? `:${e.linePos[0].line}:${e.linePos[0].col}` : '';
        return `configuration file ${file}${at} is not valid YAML: ${reason}`;
      }),
    );
  }
  const value = doc.toJS() as unknown;
  if (value !== null && (typeof value !== 'object' || Array.isArray(value))) throw new ConfigError(`configuration file ${file} must be a YAML mapping`);
  return (value ?? {}) as Record<string, unknown>;
}

/**
 * Reads the YAML file named by LADING_CONFIG (if any), applies the environment and validates. Every problem is
 * reported at once: unknown variables and invalid values together, in one ConfigError.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): LadingConfig {
  const file = env[CONFIG_FILE_ENV];
  const fromFile = file ? readConfigFile(file) : {};
  const { result, unknown } = overlayEnv(fromFile, env);
  const parsed = configSchema.safeParse(result);
  const problems = [...unknown.map(unknownVariable), ...(parsed.success ? [] : describeIssues(parsed.error.issues))];
  if (problems.length || !parsed.success) throw new ConfigError(problems);
  return parsed.data;
}
