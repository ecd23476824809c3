/** The first import of this service's main.ts: starts OpenTelemetry before anything instrumented is loaded. */
import { startTelemetry } from '@lading/telemetry/start';

/** This process's telemetry (`service.name` lading-gateway). */
export const telemetry = startTelemetry({ service: 'gateway' });
