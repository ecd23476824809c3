/** Every operator CLI answers --help and --version as a real process, without configuration or a registry. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The operator CLIs, as their npm scripts run them. */
const CLIS = {
  'garbage-collect': 'tools/gc/garbage-collect.ts',
  'lading-admin': 'tools/admin/lading-admin.ts',
  scanner: 'tools/scanner/main.ts',
  replay: 'tools/events/replay.ts',
} as const;

function run(file: string, arg: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('LADING_') && value !== undefined) env[key] = value;
  // A bad configuration would stop any CLI that read it: these must answer before reading it.
  Object.assign(env, { NODE_OPTIONS: '', LADING_NOPE: 'x' });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file, arg], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('operator CLIs', () => {
  it.each(Object.entries(CLIS))('%s prints the version of package.json for --version and exits 0', async (_name, file) => {
    expect(await run(file, '--version')).toEqual({ code: 0, stdout: `lading ${VERSION}\n`, stderr: '' });
  });

  it.each(Object.entries(CLIS))('%s prints its usage, naming --version, for --help and exits 0', async (_name, file) => {
    const result = await run(file, '--help');
    expect([result.code, result.stderr]).toEqual([0, '']);
    expect(result.stdout).toMatch(/^usage: /);
    expect(result.stdout).toContain('--version');
  });
});
