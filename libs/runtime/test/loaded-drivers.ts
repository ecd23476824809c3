/**
 * Run as its own process by lazy-drivers.spec.ts (`node --import tsx loaded-drivers.ts <data dir> [minio]`): opens the
 * embedded parts (PGlite, the filesystem, the in-process bus) on the data directory, optionally makes a MinIO client
 * after that, and prints the npm packages this process has loaded, as a JSON array, on its last line.
 */
import { parseConfig } from '@lading/config';
import { createMinioClient } from '@lading/storage';
import { createLogger } from '@lading/telemetry';
import { openProcessParts } from '../src/parts';

async function main(dataDir: string, alsoMinio: boolean): Promise<void> {
  const config = parseConfig({ data: { dir: dataDir } });
  const parts = await openProcessParts(config, createLogger({ service: 'lazy-drivers', level: 'silent' }));
  try {
    if (alsoMinio) createMinioClient({ endpoint: 'http://127.0.0.1:9', accessKey: 'a', secretKey: 'b', region: 'us-east-1' });
  } finally {
    await parts.close();
  }
  const packages = new Set(Object.keys(require.cache).flatMap((file) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1] ?? []));
  console.log(JSON.stringify([...packages].sort()));
}

main(process.argv[2], process.argv[3] === 'minio').catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
