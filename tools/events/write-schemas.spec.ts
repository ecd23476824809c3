import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AUDIT_EVENT_TYPES, EVENT_SCHEMAS_DIR, EVENT_TYPES, createEventSchemaValidator, eventJsonSchemas } from '@lading/events';
import { staleSchemaFiles, writeSchemaFiles } from './write-schemas';

describe('tools/events/write-schemas', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'lading-event-schemas-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('finds the committed docs/events schemas equal to what the event catalogue generates (run npm run events:schemas)', () => {
    expect(staleSchemaFiles(EVENT_SCHEMAS_DIR)).toEqual([]);
  });

  it('generates the envelope, the data record, the audit envelope and one schema per event type', () => {
    const types = [...Object.values(EVENT_TYPES), ...Object.values(AUDIT_EVENT_TYPES)];
    expect(Object.keys(eventJsonSchemas())).toEqual(['audit.schema.json', 'cloudevent.schema.json', 'data.schema.json', ...types.map((type) => `${type}.schema.json`)].sort());
  });

  it('writes every schema into an empty directory, rewrites a changed one and deletes one the catalogue does not define', async () => {
    expect(writeSchemaFiles(dir)).toEqual(Object.keys(eventJsonSchemas()));
    expect(staleSchemaFiles(dir)).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(readdirSync(EVENT_SCHEMAS_DIR).filter((f) => f.endsWith('.schema.json')).sort());

    writeFileSync(path.join(dir, 'data.schema.json'), '{}\n');
    writeFileSync(path.join(dir, 'io.lading.blob.exploded.schema.json'), '{}\n');
    expect(staleSchemaFiles(dir)).toEqual(['data.schema.json', 'io.lading.blob.exploded.schema.json']);
    expect(writeSchemaFiles(dir)).toEqual(['data.schema.json', 'io.lading.blob.exploded.schema.json']);
    expect(staleSchemaFiles(dir)).toEqual([]);
    expect(readFileSync(path.join(dir, 'data.schema.json'), 'utf8')).toBe(readFileSync(path.join(EVENT_SCHEMAS_DIR, 'data.schema.json'), 'utf8'));

    // What it writes compiles with ajv in strict mode, as the validator the schema specs use.
    await expect(createEventSchemaValidator(dir)).resolves.toEqual(expect.any(Function));
  });
});
