/**
 * Turns the event catalogue (event-types.ts) into the published JSON Schemas (draft 2020-12) of `docs/events/`:
 * the envelope, the canonical `data` record with the shared grammars as its `$defs`, and one schema per event type.
 * `tools/events/write-schemas.ts` writes them, and its spec fails when the committed files differ.
 */
import { z } from 'zod';
import { AUDIT_EVENT_TYPES, EVENT_SCHEMA_REGISTRY, EVENT_TYPES, eventTypeSchemaId } from './event-types';

/** The base of every schema's `$id`. */
export const EVENT_SCHEMA_BASE = 'https://schemas.lading.invalid/events/v1/';

/** The schemas that live in data.schema.json's `$defs` rather than in files of their own. */
const DATA_DEFS = ['repository', 'digest', 'tag', 'mediaType', 'descriptor'];
const DATA_FILE = 'data.schema.json';
const ENVELOPE_FILE = 'cloudevent.schema.json';
const AUDIT_FILE = 'audit.schema.json';

/** The order in which a schema's keywords are written, so that the files read top-down; others follow. */
const KEYWORD_ORDER = ['$schema', '$id', 'title', 'description', 'type', 'required', 'properties', 'additionalProperties'];
/** The keywords whose value maps names to schemas (the names keep their order). */
const SCHEMA_MAPS = ['properties', '$defs'];

/** A schema with its keywords in `KEYWORD_ORDER`, and so every schema inside it. */
function ordered(node: unknown, isSchemaMap = false): unknown {
  if (Array.isArray(node)) return node.map((item) => ordered(item));
  if (typeof node !== 'object' || node === null) return node;
  const keys = Object.keys(node);
  if (!isSchemaMap) keys.sort((a, b) => rank(a) - rank(b));
  return Object.fromEntries(keys.map((k) => [k, ordered((node as Record<string, unknown>)[k], !isSchemaMap && SCHEMA_MAPS.includes(k))]));
}
const rank = (key: string) => (KEYWORD_ORDER.includes(key) ? KEYWORD_ORDER.indexOf(key) : KEYWORD_ORDER.length);

/**
 * Drops, in place, what zod writes that says nothing here: the safe-integer bound of every integer (no size reaches
 * 2^53), the `additionalProperties: {}` of a loose object (the same as none), the item schemas of an array that
 * must be empty, and the `\/` of a RegExp's source (a `/` in a JSON Schema pattern needs no escape).
 */
function plain(node: unknown, isSchemaMap = false): void {
  if (typeof node !== 'object' || node === null) return;
  for (const [key, child] of Object.entries(node)) plain(child, !isSchemaMap && !Array.isArray(node) && SCHEMA_MAPS.includes(key));
  if (Array.isArray(node) || isSchemaMap) return;
  const schema = node as Record<string, unknown>;
  if (typeof schema.pattern === 'string') schema.pattern = schema.pattern.replaceAll('\\/', '/');
  if (schema.type === 'integer' && schema.maximum === Number.MAX_SAFE_INTEGER) delete schema.maximum;
  if (schema.maxItems === 0) {
    delete schema.prefixItems;
    delete schema.items;
  }
  if (typeof schema.additionalProperties === 'object' && Object.keys(schema.additionalProperties as object).length === 0) delete schema.additionalProperties;
}

const withoutKeys = (schema: Record<string, unknown>, keys: string[]) => Object.fromEntries(Object.entries(schema).filter(([k]) => !keys.includes(k)));

/** Every schema file of `docs/events/`, by file name, in the order of their names. */
export function eventJsonSchemas(): Record<string, Record<string, unknown>> {
  const { schemas } = z.toJSONSchema(EVENT_SCHEMA_REGISTRY, {
    target: 'draft-2020-12',
    metadata: EVENT_SCHEMA_REGISTRY,
    uri: (id) => (DATA_DEFS.includes(id) ? `${DATA_FILE}#/$defs/${id}` : id),
  }) as { schemas: Record<string, Record<string, unknown>> };
  plain(schemas, true);
  const files: Record<string, Record<string, unknown>> = {};
  const file = (name: string, schema: Record<string, unknown>) => {
    files[name] = ordered({ ...schema, $schema: 'https://json-schema.org/draft/2020-12/schema', $id: `${EVENT_SCHEMA_BASE}${name}` }) as Record<string, unknown>;
  };
  file(ENVELOPE_FILE, schemas[ENVELOPE_FILE]);
  // The shared grammars become data.schema.json's own $defs, which it references locally.
  const defs = Object.fromEntries(DATA_DEFS.map((id) => [id, withoutKeys(schemas[id], ['$schema', '$id'])]));
  const local = JSON.parse(JSON.stringify({ ...schemas[DATA_FILE], $defs: defs }).replaceAll(`"${DATA_FILE}#/$defs/`, '"#/$defs/'));
  file(DATA_FILE, local);
  for (const type of Object.values(EVENT_TYPES)) file(eventTypeSchemaId(type), schemas[eventTypeSchemaId(type)]);
  file(AUDIT_FILE, schemas[AUDIT_FILE]);
  for (const type of Object.values(AUDIT_EVENT_TYPES)) file(eventTypeSchemaId(type), schemas[eventTypeSchemaId(type)]);
  return Object.fromEntries(Object.keys(files).sort().map((name) => [name, files[name]]));
}

/** A schema file's text as committed: two-space JSON and a final newline. */
export const eventJsonSchemaText = (schema: Record<string, unknown>): string => `${JSON.stringify(schema, null, 2)}\n`;
