/**
 * The published JSON Schemas (draft 2020-12) of Lading's events, in `docs/events/`: the CloudEvents envelope with
 * Lading's extensions, the canonical `data` record, and one schema per event type. Tests validate every event the
 * registry emits against them; tools and consumers can use the same validator.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { EVENT_SCHEMA_BASE } from './event-json-schemas';
import { isAuditEventType } from './event-types';

/** Where the schemas live in the repository (generated from the catalogue by `npm run events:schemas`). */
export const EVENT_SCHEMAS_DIR = path.resolve(__dirname, '..', '..', '..', 'docs', 'events');

/** The `$id` of the envelope schema, the one to validate an event with. */
export const EVENT_SCHEMA_ID = `${EVENT_SCHEMA_BASE}cloudevent.schema.json`;

/** The `$id` of the audit events' schema (`io.lading.audit.*`, which have an envelope of their own). */
export const AUDIT_EVENT_SCHEMA_ID = `${EVENT_SCHEMA_BASE}audit.schema.json`;

/** Every schema file of `docs/events`, parsed. */
export function loadEventSchemas(dir: string = EVENT_SCHEMAS_DIR): Array<Record<string, unknown>> {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.schema.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Record<string, unknown>);
}

/** Validates one event record: the list of problems, empty when it conforms. */
export type EventValidator = (event: unknown) => string[];

/**
 * Builds a validator from the published schemas, with ajv (a development dependency, loaded only when this is
 * called), and the one rule JSON Schema cannot state: `partitionkey` equals `data.repository`. An audit event
 * (`io.lading.audit.*`) is validated against audit.schema.json instead, every other one against the envelope.
 */
export async function createEventSchemaValidator(dir: string = EVENT_SCHEMAS_DIR): Promise<EventValidator> {
  const { Ajv2020 } = await import('ajv/dist/2020.js');
  const formats = await import('ajv-formats');
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  formats.default.default(ajv);
  for (const schema of loadEventSchemas(dir)) ajv.addSchema(schema);
  const envelope = ajv.getSchema(EVENT_SCHEMA_ID);
  const audit = ajv.getSchema(AUDIT_EVENT_SCHEMA_ID);
  if (!envelope || !audit) throw new Error(`no schema ${EVENT_SCHEMA_ID} or ${AUDIT_EVENT_SCHEMA_ID} in ${dir}`);
  return (event) => {
    const type = (event as { type?: unknown } | null)?.type;
    if (typeof type === 'string' && isAuditEventType(type)) {
      return audit(event) ? [] : (audit.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
    }
    const validate = envelope;
    const problems = validate(event) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${'additionalProperty' in e.params ? ` (${e.params.additionalProperty})` : ''}`);
    const e = event as { partitionkey?: unknown; data?: { repository?: unknown } } | null;
    if (e && typeof e === 'object' && e.partitionkey !== e.data?.repository) problems.push('/partitionkey differs from /data/repository');
    return problems;
  };
}
