/** The structured logger every service uses (pino JSON); later issues add trace ids to every line. */
import pino from 'pino';

/** A structured logger. */
export type Logger = pino.Logger;

/** Options for a service's logger. */
export interface LoggerOptions {
  service: string;
  level: string;
  /** Where lines go; defaults to stdout. Tests pass a sink to read what was logged. */
  destination?: pino.DestinationStream;
}

/** Creates the logger of one service; secrets are redacted wherever they appear in logged objects. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: `lading-${options.service}` },
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token'], censor: '[redacted]' },
    },
    options.destination,
  );
}
