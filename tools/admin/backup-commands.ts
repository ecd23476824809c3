/**
 * The admin CLI's backup and restore (services/embedded/src/backup): writing the archive a running embedded registry
 * streams at GET /admin/v1/backup to a file, atomically and checked; restoring an archive into an empty data directory
 * (with no registry on it); checking an archive. The registry's own modules are loaded only by these commands.
 */
import { constants } from 'node:fs';
import { access, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BackupSummary, RestoreResult } from '@lading/embedded';

/** A backup or restore that was refused or failed, told in one line: exit status 1. */
export class BackupCommandError extends Error {}

/** Variables of the CLI itself, not of the registry's configuration. */
const CLI_VARIABLES = new Set(['LADING_URL', 'LADING_USER_PASSWORD', 'LADING_ADMIN_CWD']);

async function exists(file: string): Promise<boolean> {
  return access(file, constants.F_OK).then(
    () => true,
    () => false,
  );
}

/** One line about an archive's content. */
export function describeSummary(s: BackupSummary): string {
  const t = s.tables;
  const n = (count: number | undefined, one: string, many: string) => `${count ?? 0} ${count === 1 ? one : many}`;
  const mib = (s.blobs.bytes / 1048576).toFixed(1);
  return (
    `${n(t.repositories, 'repository', 'repositories')}, ${n(t.manifests, 'manifest', 'manifests')}, ${n(t.tags, 'tag', 'tags')}, ` +
    `${n(s.blobs.count, 'blob', 'blobs')} (${mib} MiB), ${n(t.users, 'user', 'users')}; schema ${s.schema.version}; ` +
    `taken ${s.createdAt} by ${s.lading.name} ${s.lading.version}`
  );
}

/** Maps the registry modules' refusals (a held directory, a bad archive, a bad configuration) to one-line failures. */
function refusal(err: unknown): unknown {
  const name = (err as Error)?.name;
  if (['DataDirLockedError', 'RestoreRefusedError', 'BackupArchiveError', 'ConfigError'].includes(name)) return new BackupCommandError((err as Error).message);
  return err;
}

/**
 * Writes a backup archive from `body` (the registry's answer, `expectedBytes` long) to `out`: into a partial file
 * beside it, synced, read back and checked whole (backup-archive.ts), and only then renamed to `out`. Refuses to
 * replace an existing file. A transfer that breaks off, or an archive that does not check out, leaves nothing at `out`.
 */
export async function writeBackupFile(body: AsyncIterable<Uint8Array>, expectedBytes: number | null, out: string): Promise<BackupSummary> {
  const target = path.resolve(out);
  if (await exists(target)) throw new BackupCommandError(`${target} exists; give --out a new file (a backup never replaces one)`);
  const partial = `${target}.partial-${process.pid}`;
  let bytes = 0;
  try {
    const file = await open(partial, 'wx');
    try {
      try {
        for await (const chunk of body) {
          bytes += chunk.length;
          await file.write(chunk);
        }
      } catch (err) {
        throw new BackupCommandError(
          `the backup broke off after ${bytes}${expectedBytes === null ? '' : ` of ${expectedBytes}`} bytes (${(err as Error).message}); ` +
            `the registry's log says why; nothing was written to ${target}`,
        );
      }
      await file.sync();
    } finally {
      await file.close();
    }
    if (expectedBytes !== null && bytes !== expectedBytes) {
      throw new BackupCommandError(`the backup ended after ${bytes} of ${expectedBytes} bytes; nothing was written to ${target}`);
    }
    const { verifyBackupArchive } = await import('@lading/embedded');
    const { createReadStream } = await import('node:fs');
    const summary = await verifyBackupArchive(createReadStream(partial, { highWaterMark: 1 << 20 })).catch((err: unknown) => {
      throw new BackupCommandError(`the archive the registry sent does not check out: ${(err as Error).message}; nothing was written to ${target}`);
    });
    await rename(partial, target);
    // The rename itself survives a crash once the directory is synced.
    const dir = await open(path.dirname(target), 'r');
    await dir.sync().finally(() => dir.close());
    return summary;
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
}

/** Checks an archive file whole without restoring it; resolves with its summary. */
export async function checkBackupFile(file: string): Promise<BackupSummary> {
  const { verifyBackupArchive } = await import('@lading/embedded');
  const { createReadStream } = await import('node:fs');
  if (!(await exists(file))) throw new BackupCommandError(`${file} does not exist`);
  return verifyBackupArchive(createReadStream(file, { highWaterMark: 1 << 20 })).catch((err: unknown) => Promise.reject(refusal(err)));
}

/**
 * Restores an archive file into the data directory of the registry's configuration (LADING_CONFIG and LADING_*
 * variables, with `dataDir` for `data.dir` when given).
 */
export async function restoreBackupFile(
  file: string,
  env: Record<string, string | undefined>,
  dataDir: string | undefined,
  progress: (line: string) => void,
): Promise<RestoreResult> {
  if (!(await exists(file))) throw new BackupCommandError(`${file} does not exist`);
  const [{ loadConfig }, { restoreBackup }, { createReadStream }] = await Promise.all([import('@lading/config'), import('@lading/embedded'), import('node:fs')]);
  const configEnv = Object.fromEntries(Object.entries(env).filter(([name]) => !CLI_VARIABLES.has(name)));
  if (dataDir !== undefined) configEnv.LADING_DATA_DIR = dataDir;
  try {
    const config = loadConfig(configEnv);
    return await restoreBackup(config, createReadStream(file, { highWaterMark: 1 << 20 }), { progress });
  } catch (err) {
    throw refusal(err);
  }
}
