/**
 * Writes the published JSON Schemas of Lading's events, `docs/events/*.schema.json`, from the one definition of the
 * events in `libs/events/src/event-types.ts`:
 *
 *   npm run events:schemas            rewrites the files (and deletes a schema file the catalogue no longer has)
 *   npm run events:schemas -- --check exits 1, naming the files, when the committed files differ from the catalogue
 *
 * Run it after changing an event type; `libs/events/src/event-json-schemas.spec.ts` fails until you do.
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EVENT_SCHEMAS_DIR, eventJsonSchemaText, eventJsonSchemas } from '@lading/events';

/** The files of `dir` that differ from the catalogue's schemas: changed, missing or no longer defined. */
export function staleSchemaFiles(dir: string = EVENT_SCHEMAS_DIR): string[] {
  const wanted = eventJsonSchemas();
  const committed = readdirSync(dir).filter((f) => f.endsWith('.schema.json'));
  const differing = Object.keys(wanted).filter((name) => !existsSync(path.join(dir, name)) || readFileSync(path.join(dir, name), 'utf8') !== eventJsonSchemaText(wanted[name]));
  return [...differing, ...committed.filter((name) => !(name in wanted))].sort();
}

/** Makes `dir` hold exactly the catalogue's schemas; returns the files it wrote or deleted. */
export function writeSchemaFiles(dir: string = EVENT_SCHEMAS_DIR): string[] {
  const stale = staleSchemaFiles(dir);
  const wanted = eventJsonSchemas();
  for (const name of stale) {
    if (name in wanted) writeFileSync(path.join(dir, name), eventJsonSchemaText(wanted[name]));
    else rmSync(path.join(dir, name));
  }
  return stale;
}

if (require.main === module) {
  const check = process.argv.includes('--check');
  const files = check ? staleSchemaFiles() : writeSchemaFiles();
  const where = path.relative(process.cwd(), EVENT_SCHEMAS_DIR) || '.';
  if (files.length === 0) console.log(`${where}: the event schemas are up to date`);
  else console.log(`${where}: ${check ? 'differ from the catalogue' : 'rewrote'}: ${files.join(', ')}${check ? ' (run npm run events:schemas)' : ''}`);
  if (check && files.length > 0) process.exitCode = 1;
}
