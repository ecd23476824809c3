/** The traced embedded registry's first import: starts OpenTelemetry before anything instrumented is loaded. */
import { startTelemetry } from '@lading/telemetry/start';

/** The embedded registry's telemetry (`service.name` lading-registry). */
export const telemetry = startTelemetry({ service: 'registry' });
