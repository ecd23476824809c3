/** Opens the bus the configuration implies: in-process (embedded) or Kafka (when brokers are configured). */
import type { LadingConfig } from '@lading/config';
import { EventBus, HandlerErrorReporter, createInProcessBus } from './bus';
import { createKafkaBus } from './kafka-bus';

/** Opens the configured bus. */
export async function openBus(
  config: LadingConfig,
  report: { handlerError: HandlerErrorReporter; kafkaLog: (level: 'warn' | 'error', message: string, extra: Record<string, unknown>) => void },
): Promise<EventBus> {
  if (config.kafka.brokers.length > 0) {
    return createKafkaBus({ ...config.kafka, log: report.kafkaLog });
  }
  return createInProcessBus(report.handlerError);
}
