/**
 * The connection settings of the real Postgres, Kafka and MinIO that `tools/infra up` started. Tests of the
 * distributed drivers need them; when they are missing the test fails with a sentence saying how to get them
 * (never a silent skip).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The settings `tools/infra up` writes to `.infra/env`. */
export interface InfraSettings {
  databaseUrl: string;
  kafkaBrokers: string[];
  storage: { endpoint: string; accessKey: string; secretKey: string; bucket: string; region: string };
  /** Every LADING_* line of the file, to hand to a process as its environment. */
  env: Record<string, string>;
}

/** The repository's root (where `.infra/` lives). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

/** Reads `.infra/env`; throws a clear error when `tools/infra up` has not run. */
export function infraSettings(): InfraSettings {
  const file = path.join(REPO_ROOT, '.infra', 'env');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`${file} is missing: run tools/infra up (npm test does) before the distributed-driver tests`);
  }
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  const need = (key: string) => {
    if (!env[key]) throw new Error(`${file} has no ${key}: re-run tools/infra up`);
    return env[key];
  };
  return {
    databaseUrl: need('LADING_DATABASE_URL'),
    kafkaBrokers: need('LADING_KAFKA_BROKERS').split(','),
    storage: {
      endpoint: need('LADING_STORAGE_ENDPOINT'),
      accessKey: need('LADING_STORAGE_ACCESSKEY'),
      secretKey: need('LADING_STORAGE_SECRETKEY'),
      bucket: env.LADING_STORAGE_BUCKET ?? 'lading',
      region: env.LADING_STORAGE_REGION ?? 'us-east-1',
    },
    env,
  };
}
