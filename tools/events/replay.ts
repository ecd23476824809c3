/**
 * Replays the registry's events topic from any offset or time:
 *
 *   node --import tsx tools/events/replay.ts (--from-beginning | --from-time ISO | --from-offset P:O,...)
 *       [--until ISO] [--repository NAME] [--type TYPE,...] [--brokers host:port,...] [--topic NAME]
 *       prints one CloudEvent JSON per line (stdout), in order within each partition (so within each repository),
 *       up to the end the topic had when the replay started; a summary goes to stderr
 *
 *   node --import tsx tools/events/replay.ts --reset-group GROUP (--from-beginning | --from-time ISO | --from-offset ...)
 *       moves the consumer group's committed offsets there instead (stop the group's consumers first), so that they
 *       re-process everything from that point at their next start
 *
 * `--from-time` uses Kafka's record timestamps (the time the relay published each event, moments after the change
 * committed). Brokers and topic default to the registry's settings (LADING_KAFKA_BROKERS, LADING_KAFKA_TOPIC).
 */
import { parseArgs } from 'node:util';
import { loadConfigOrExit, versionLine } from '@lading/runtime';
import { ReplayStart, parsePartitionOffsets, replayEvents, resetGroupOffsets } from './event-replay';

const USAGE = `usage: replay (--from-beginning | --from-time ISO | --from-offset P:O,...) [--until ISO] [--repository NAME] [--type T,...]
              [--brokers host:port,...] [--topic NAME]
       replay --reset-group GROUP (--from-beginning | --from-time ISO | --from-offset P:O,...) [--brokers ...] [--topic NAME]
       replay --help | --version

Kafka's brokers and topic default to the registry's configuration: the YAML file named by LADING_CONFIG and
LADING_* variables (the Configuration table of README.md).
`;

function fail(message: string): never {
  process.stderr.write(`replay: ${message}\n${USAGE}`);
  process.exit(2);
}

function parseTime(name: string, text: string): Date {
  const at = new Date(text);
  if (!/^\d{4}-\d\d-\d\d/.test(text) || Number.isNaN(at.getTime())) fail(`${name} takes an ISO 8601 time, e.g. 2026-11-23T17:00:00Z`);
  return at;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        'from-beginning': { type: 'boolean', default: false },
        'from-time': { type: 'string' },
        'from-offset': { type: 'string' },
        until: { type: 'string' },
        repository: { type: 'string' },
        type: { type: 'string' },
        'reset-group': { type: 'string' },
        brokers: { type: 'string' },
        topic: { type: 'string' },
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
  const starts = [values['from-beginning'] ? 'x' : undefined, values['from-time'], values['from-offset']].filter((v) => v !== undefined);
  if (starts.length !== 1) fail('give exactly one of --from-beginning, --from-time, --from-offset');
  let from: ReplayStart;
  if (values['from-time'] !== undefined) from = { kind: 'time', at: parseTime('--from-time', values['from-time']) };
  else if (values['from-offset'] !== undefined) {
    try {
      from = { kind: 'offsets', offsets: parsePartitionOffsets(values['from-offset']) };
    } catch (err) {
      fail((err as Error).message);
    }
  } else from = { kind: 'beginning' };

  const config = loadConfigOrExit();
  const brokers = values.brokers ? values.brokers.split(',') : config.kafka.brokers;
  if (brokers.length === 0) fail('no Kafka brokers: pass --brokers or set LADING_KAFKA_BROKERS');
  const topic = values.topic ?? config.kafka.topic;

  if (values['reset-group'] !== undefined) {
    if (values.until || values.repository || values.type) fail('--reset-group moves a whole group: --until, --repository and --type do not apply');
    const partitions = await resetGroupOffsets({ brokers, topic, group: values['reset-group'], from });
    process.stderr.write(`replay: group ${values['reset-group']} now starts at ${partitions.map((p) => `${p.partition}:${p.offset}`).join(',')} on ${topic}\n`);
    return;
  }

  const summary = await replayEvents({
    brokers,
    topic,
    from,
    until: values.until !== undefined ? parseTime('--until', values.until) : undefined,
    repository: values.repository,
    types: values.type?.split(','),
    write: async ({ event }) => {
      if (!process.stdout.write(`${JSON.stringify(event)}\n`)) await new Promise((resolve) => process.stdout.once('drain', resolve));
    },
  });
  process.stderr.write(`replay: ${summary.written} event(s) written, ${summary.filtered} filtered out\n`);
  if (summary.unfinished.length > 0) {
    process.stderr.write(`replay: partitions ${summary.unfinished.join(',')} stopped before their end (no records arrived for a while)\n`);
    process.exitCode = 1;
  }
}

main().catch((err) => {
  process.stderr.write(`replay: ${(err as Error)?.message ?? err}\n`);
  process.exit(1);
});
