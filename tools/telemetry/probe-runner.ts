/** Runs a TypeScript entry point as its own process (`node --import tsx`), with its own environment, for tests. */
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

/** The repository root. */
export const ROOT = path.resolve(__dirname, '..', '..');

/** A process under test: its output lines, parsed reports, and how to stop it. */
export interface RunningProcess {
  child: ChildProcess;
  /** Every stdout line so far. */
  lines: string[];
  /** Resolves with the first `{"probe": {...}}` report that has `key`. */
  report(key: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Sends SIGTERM and resolves with the exit code (kills after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<number | null>;
  stderr(): string;
}

/**
 * Starts `entry` with `env` on top of a clean environment: no inherited OTEL_* or LADING_* variables, so
 * what the test sets is all the process sees.
 */
export function runEntry(entry: string, env: Record<string, string>): RunningProcess {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_') && !k.startsWith('LADING_') && k !== 'NODE_OPTIONS'));
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve(ROOT, entry)], { cwd: ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let err = '';
  let partial = '';
  const listeners = new Set<() => void>();
  child.stdout?.on('data', (chunk: Buffer) => {
    partial += chunk.toString('utf8');
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const l of [...listeners]) l();
  });
  child.stderr?.on('data', (chunk: Buffer) => void (err += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const reports = () =>
    lines.flatMap((l) => {
      try {
        const parsed = JSON.parse(l) as { probe?: Record<string, unknown> };
        return parsed.probe ? [parsed.probe] : [];
      } catch {
        return [];
      }
    });
  return {
    child,
    lines,
    stderr: () => err,
    report(key, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = reports().find((r) => key in r);
          if (found) {
            done();
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${entry} gave no "${key}" report in ${timeoutMs} ms; stderr: ${err.slice(-2000)}`));
        }, timeoutMs);
        const onExit = () => setTimeout(() => {
          if (!reports().some((r) => key in r)) {
            done();
            reject(new Error(`${entry} exited before its "${key}" report; stderr: ${err.slice(-2000)}`));
          }
        }, 50);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
        };
        listeners.add(check);
        child.once('exit', onExit);
        check();
      });
    },
    async stop(timeoutMs = 15_000) {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
