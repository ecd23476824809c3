/** Loads the configuration: a YAML file (optional), then `LADING_*` environment overrides, then validation. */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configObject, configSchema, LadingConfig, LadingConfigInput } from './schema';

/** The environment variable that names the YAML file; it is not itself a config key. */
export const CONFIG_FILE_ENV = 'LADING_CONFIG';

/** A configuration problem, naming the key (or environment variable) that is wrong. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
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

/**
 * Applies `LADING_*` variables onto a config object: `LADING_HTTP_ADDR` sets `http.addr`; segments match keys
 * case-insensitively; an empty variable is ignored. An unknown variable is an error that names it.
 */
export function applyEnv(input: Record<string, unknown>, env: Record<string, string | undefined>): Record<string, unknown> {
  const result: Record<string, unknown> = structuredClone(input);
  for (const [name, value] of Object.entries(env)) {
    // An empty variable counts as unset (compose files pass `${VAR:-}` through).
    if (!name.startsWith('LADING_') || name === CONFIG_FILE_ENV || value === undefined || value === '') continue;
    const segments = name.slice('LADING_'.length).toLowerCase().split('_');
    let shape: Shape | null = configObject.shape as Shape;
    let target = result;
    const path: string[] = [];
    for (let i = 0; i < segments.length; i++) {
      const key = shape ? Object.keys(shape).find((k) => k.toLowerCase() === segments[i]) : undefined;
      if (!shape || !key) throw new ConfigError(`unknown configuration variable ${name}`);
      path.push(key);
      if (i === segments.length - 1) {
        target[key] = coerce(shape[key], value);
      } else {
        const next = target[key];
        target[key] = typeof next === 'object' && next !== null ? next : {};
        target = target[key] as Record<string, unknown>;
        shape = shapeOf(shape[key]);
      }
    }
  }
  return result;
}

/** Validates a config object; a bad key or value is an error naming the key. */
export function parseConfig(input: LadingConfigInput | Record<string, unknown>): LadingConfig {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    let key = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') key = [...issue.path, ...issue.keys].join('.');
    throw new ConfigError(`invalid configuration at ${key || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

/** Reads the YAML file named by LADING_CONFIG (if any), applies the environment and validates. */
export function loadConfig(env: Record<string, string | undefined> = process.env): LadingConfig {
  let fromFile: Record<string, unknown> = {};
  const file = env[CONFIG_FILE_ENV];
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read configuration file ${file}: ${(err as Error).message}`);
    }
    const doc = parseYaml(text) as unknown;
    if (doc !== null && (typeof doc !== 'object' || Array.isArray(doc))) throw new ConfigError(`configuration file ${file} must be a YAML mapping`);
    fromFile = (doc ?? {}) as Record<string, unknown>;
  }
  return parseConfig(applyEnv(fromFile, env));
}
