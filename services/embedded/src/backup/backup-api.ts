/**
 * The backup route of the embedded registry's admin API (`GET /admin/v1/backup`, admins only): answers a backup
 * archive (backup-archive.ts) of the running registry, taken while it serves (backup-stream.ts). The response has
 * its length up front; an archive that cannot be completed (an object that no longer matches its blob row) is cut
 * short, so a client never mistakes it for a whole one (and the archive's trailer is missing besides).
 * `lading-admin backup --out FILE` is its client.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import express, { Router } from 'express';
import { BackupSource, prepareBackup } from './backup-stream';

/** Creates the backup router (authentication is the mounting admin API's). */
export function createBackupRouter(source: BackupSource): Router {
  const router = express.Router();
  router.get('/', async (_req, res) => {
    const started = performance.now();
    const backup = await prepareBackup(source);
    try {
      const stamp = backup.summary.createdAt.replace(/[:.]/g, '-');
      res.writeHead(200, {
        'Content-Type': 'application/x-tar',
        'Content-Length': String(backup.bytes),
        'Content-Disposition': `attachment; filename="lading-backup-${stamp}.tar"`,
        'Cache-Control': 'no-store',
      });
      await pipeline(Readable.from(backup.stream()), res);
      source.logger.info(
        { blobs: backup.summary.blobs.count, bytes: backup.bytes, schema: backup.summary.schema.version, ms: Math.round(performance.now() - started) },
        'backup: archive sent',
      );
    } catch (err) {
      source.logger.warn({ err }, 'backup: the archive was not sent whole (the client went away, or the storage failed)');
      res.destroy();
    } finally {
      await backup.close();
    }
  });
  return router;
}
