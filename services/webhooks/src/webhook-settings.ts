/** The delivery worker's settings, read once from `webhooks.*` with durations in milliseconds. */
import { LadingConfig, durationMs } from '@lading/config';

/** `webhooks.*` as the worker uses it. */
export interface WebhookSettings {
  maxAttempts: number;
  maxAgeMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  timeoutMs: number;
  concurrency: number;
  pollIntervalMs: number;
  allowList: string[];
}

/** Reads the settings from the configuration. */
export function webhookSettings(config: LadingConfig): WebhookSettings {
  const w = config.webhooks;
  return {
    maxAttempts: w.maxAttempts,
    maxAgeMs: durationMs(w.maxAge),
    backoffInitialMs: durationMs(w.backoffInitial),
    backoffMaxMs: durationMs(w.backoffMax),
    timeoutMs: durationMs(w.timeout),
    concurrency: w.concurrency,
    pollIntervalMs: durationMs(w.pollInterval),
    allowList: w.allowList,
  };
}
