/** Running the admin CLI as a real process, for its specs. */
import { spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

/** The first admin of the registries the specs start. */
export const ADMIN = { user: 'root', password: 'root-password-9' };

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with the admin's credentials in the environment (as LADING_ADMIN_USER/PASSWORD), unless told otherwise. */
export function cli(args: string[], options: { env?: Record<string, string>; stdin?: string; wrapper?: boolean } = {}): Promise<Result> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('LADING_') && value !== undefined) env[key] = value;
  Object.assign(env, { NODE_OPTIONS: '', LADING_ADMIN_USER: ADMIN.user, LADING_ADMIN_PASSWORD: ADMIN.password }, options.env ?? {});
  const [command, argv] = options.wrapper ? ['bash', ['tools/admin/lading-admin', ...args]] : [process.execPath, ['--import', 'tsx', 'tools/admin/lading-admin.ts', ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

/** Runs many CLI invocations, a few at a time. */
export async function cliAll(runs: Array<{ args: string[]; env?: Record<string, string> }>, concurrency = 4): Promise<Result[]> {
  const results: Result[] = new Array(runs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < runs.length) {
        const i = next++;
        results[i] = await cli(runs[i].args, { env: runs[i].env });
      }
    }),
  );
  return results;
}
