/**
 * The example scanner's command line:
 *
 *   node --import tsx tools/scanner/main.ts --registry http://127.0.0.1:5000 [--brokers host:port,...]
 *       [--topic lading.events] [--group lading-scanner] [--from-beginning] [--username NAME]
 *       [--once | --stop-after N] [--deadline 60s]
 *
 * Kafka's brokers and topic default to the registry's own settings (LADING_KAFKA_BROKERS, LADING_KAFKA_TOPIC or
 * the LADING_CONFIG file), so `set -a; . .infra/env; set +a` is enough next to tools/infra. With auth on, give a
 * robot account with pull and push on the scanned namespaces: `--username 'robot$scanner'` and its secret in
 * SCANNER_PASSWORD (never on the command line, where `ps` shows it).
 */
import { parseArgs } from 'node:util';
import { createRegistryClient } from '@lading/client';
import { durationMs } from '@lading/config';
import { loadConfigOrExit, versionLine } from '@lading/runtime';
import { createLogger } from '@lading/telemetry';
import { startKafkaScanner } from './kafka-scanner';
import { createScanner } from './scanner';

const USAGE = `usage: scanner --registry URL [--brokers host:port,...] [--topic NAME] [--group NAME] [--from-beginning]
               [--username NAME (password in SCANNER_PASSWORD)] [--once | --stop-after N] [--deadline DURATION]
       scanner --help | --version

Kafka's brokers and topic default to the registry's configuration: the YAML file named by LADING_CONFIG and
LADING_* variables (the Configuration table of README.md).
`;

function fail(message: string): never {
  process.stderr.write(`scanner: ${message}\n${USAGE}`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        registry: { type: 'string', default: 'http://127.0.0.1:5000' },
        brokers: { type: 'string' },
        topic: { type: 'string' },
        group: { type: 'string', default: 'lading-scanner' },
        'from-beginning': { type: 'boolean', default: false },
        username: { type: 'string' },
        once: { type: 'boolean', default: false },
        'stop-after': { type: 'string' },
        deadline: { type: 'string' },
        help: { type: 'boolean', default: false },
        version: { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (values.version) {
    process.stdout.write(`${versionLine()}\n`);
    return;
  }
  const registryConfig = loadConfigOrExit();
  const brokers = values.brokers ? values.brokers.split(',') : registryConfig.kafka.brokers;
  if (brokers.length === 0) fail('no Kafka brokers: pass --brokers or set LADING_KAFKA_BROKERS');
  const stopAfter = values.once ? 1 : values['stop-after'] !== undefined ? Number(values['stop-after']) : undefined;
  if (stopAfter !== undefined && !(Number.isInteger(stopAfter) && stopAfter > 0)) fail('--stop-after takes a positive whole number');
  let deadlineMs: number | undefined;
  try {
    deadlineMs = values.deadline ? Date.now() + durationMs(values.deadline) : undefined;
  } catch (err) {
    fail((err as Error).message);
  }
  const password = process.env.SCANNER_PASSWORD;
  if (values.username && !password) fail('--username needs the password in SCANNER_PASSWORD');

  const logger = createLogger({ service: 'scanner', level: 'info' });
  const log = (level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}) => logger[level](fields, message);
  const credentials = values.username ? { username: values.username, password: password as string } : undefined;
  const registry = createRegistryClient({ url: values.registry, credentials, userAgent: 'lading-example-scanner' });
  const scanner = createScanner({ registry, now: () => new Date(), log });
  const running = await startKafkaScanner({
    brokers,
    topic: values.topic ?? registryConfig.kafka.topic,
    group: values.group,
    fromBeginning: values['from-beginning'],
    stopAfter,
    deadlineMs,
    scanner,
    log,
  });
  logger.info({ registry: values.registry, group: values.group, topic: values.topic ?? registryConfig.kafka.topic }, 'scanner is consuming');
  process.once('SIGINT', () => void running.stop());
  process.once('SIGTERM', () => void running.stop());
  const tally = await running.finished;
  await registry.close();
  process.stdout.write(`${JSON.stringify(tally)}\n`);
}

main().catch((err) => {
  process.stderr.write(`scanner: ${(err as Error)?.message ?? err}\n`);
  process.exit(1);
});
