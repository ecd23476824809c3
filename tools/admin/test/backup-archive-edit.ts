/** Editing backup archives for the specs: the same archive with a changed summary, its checksums left as they were. */
import { BACKUP_ENTRIES, BackupSummary, TAR_END, readTar, tarHeader, tarPadding } from '@lading/embedded';

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

/** Rewrites the summary of an archive with `change`; every other entry is copied as it is. */
export async function rewriteSummary(archive: Buffer, change: (summary: BackupSummary) => Record<string, unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const entry of readTar(once(archive))) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry.body) chunks.push(chunk);
    let data = Buffer.concat(chunks);
    if (entry.path === BACKUP_ENTRIES.summary) data = Buffer.from(JSON.stringify(change(JSON.parse(data.toString('utf8')) as BackupSummary)));
    parts.push(tarHeader(entry.path, data.length, new Date()), data, tarPadding(data.length));
  }
  parts.push(TAR_END);
  return Buffer.concat(parts);
}
