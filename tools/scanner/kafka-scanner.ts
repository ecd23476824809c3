/**
 * The scanner on Kafka: a consumer in its own group on the events topic, handing each event to the scanner and
 * committing the event's offset only after the scanner is done with it (its report stored), so a crash between a
 * push and its report means the event is delivered again, never skipped. A failed scan is not committed: the
 * consumer gives it back to kafkajs, which re-reads it after a backoff.
 */
import { Consumer, logLevel } from 'kafkajs';
import { createKafkaClient, type LadingEvent } from '@lading/events';
import type { ScanOutcome, Scanner, ScannerLog } from './scanner';

/** Settings of the consumer. */
export interface KafkaScannerOptions {
  brokers: string[];
  topic: string;
  /** The scanner's own consumer group: Kafka keeps its position apart from every other consumer's. */
  group: string;
  /** Where a group with no committed position starts: the oldest event, or only new ones. */
  fromBeginning: boolean;
  /** Stop after this many image manifests were handled (reported, or found already reported). */
  stopAfter?: number;
  /** Stop at this time whatever happened (a test's or a batch job's deadline). */
  deadlineMs?: number;
  scanner: Scanner;
  log: ScannerLog;
  clientId?: string;
  /** Called after each handled event, its offset committed (tests watch progress with it). */
  onHandled?: (outcome: ScanOutcome, event: LadingEvent) => void;
}

/** What a run did. */
export interface ScannerTally {
  reported: number;
  alreadyReported: number;
  skipped: number;
  failed: number;
  /** Records that were not CloudEvents JSON (committed and ignored). */
  unreadable: number;
}

/** A running scanner. */
export interface RunningScanner {
  tally: ScannerTally;
  /** Resolves when the run stops: `stopAfter` reached, the deadline passed, or `stop` called. */
  finished: Promise<ScannerTally>;
  stop(): Promise<ScannerTally>;
}

/** Starts consuming; resolves once the consumer has joined its group and runs. */
export async function startKafkaScanner(options: KafkaScannerOptions): Promise<RunningScanner> {
  const kafka = createKafkaClient({
    clientId: options.clientId ?? 'lading-scanner',
    brokers: options.brokers,
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => options.log('warn', String(entry.log.message), { kafka: entry.namespace }),
  });
  const consumer: Consumer = kafka.consumer({ groupId: options.group });
  const tally: ScannerTally = { reported: 0, alreadyReported: 0, skipped: 0, failed: 0, unreadable: 0 };
  let stopRequested: () => void = () => undefined;
  const stopSignal = new Promise<void>((resolve) => (stopRequested = resolve));
  let handledImages = 0;

  await consumer.connect();
  await consumer.subscribe({ topic: options.topic, fromBeginning: options.fromBeginning });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      const commit = () => consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
      let event: LadingEvent;
      try {
        event = JSON.parse(message.value?.toString('utf8') ?? '') as LadingEvent;
        if (typeof event?.type !== 'string') throw new Error('no type');
      } catch {
        tally.unreadable++;
        options.log('warn', 'ignoring a record that is not a structured-mode CloudEvent', { partition, offset: message.offset });
        await commit();
        return;
      }
      let outcome: ScanOutcome;
      try {
        outcome = await options.scanner.handle(event);
      } catch (err) {
        tally.failed++;
        options.log('error', 'scan failed; the event will be delivered again', { eventId: event.id, subject: event.subject, err: (err as Error).message });
        throw err;
      }
      await commit();
      if (outcome.action === 'reported') tally.reported++;
      else if (outcome.action === 'already-reported') tally.alreadyReported++;
      else tally.skipped++;
      options.onHandled?.(outcome, event);
      if (outcome.action !== 'skipped' && options.stopAfter !== undefined && ++handledImages >= options.stopAfter) stopRequested();
    },
  });

  const deadline = options.deadlineMs !== undefined ? setTimeout(() => stopRequested(), Math.max(0, options.deadlineMs - Date.now())) : null;
  // Disconnecting from inside eachMessage would wait for itself; the stop happens here, after the handler returned.
  const finished = stopSignal.then(async () => {
    if (deadline) clearTimeout(deadline);
    await consumer.disconnect();
    return tally;
  });
  return {
    tally,
    finished,
    stop() {
      stopRequested();
      return finished;
    },
  };
}
