/** The probe's first import: starts OpenTelemetry before express, pg, kafkajs and undici are loaded. */
import { startTelemetry } from '@lading/telemetry/start';

/** The probe process's telemetry. */
export const telemetry = startTelemetry({ service: 'probe' });
