/** The command line every Lading process takes: `--help` and `--version`, answered before anything starts. */
import { CONFIG_FILE_ENV } from '@lading/config';
import { LadingVersion, versionLine } from './version';

/** What a process's `--help` says about it. */
export interface ProcessDescription {
  /** The service name (`registry`, `blob`, ...): the process is `lading-<service>`. */
  service: string;
  /** One sentence: what the process is. */
  about: string;
  /** How it is started, e.g. `node dist/blob/main.cjs`. */
  command: string;
  /**
   * What it does when started without options, one or more sentences; by default a server's: it starts and serves
   * until SIGTERM or SIGINT. A one-shot (`runTask`) says what it does and when it exits.
   */
  runs?: string;
}

/** What a server does when started without options. */
const SERVES = 'Without options it starts and serves until SIGTERM or SIGINT.';

/** The usage text of a Lading process. */
export function processUsage(described: ProcessDescription): string {
  return [
    `lading-${described.service}: ${described.about}`,
    '',
    `Usage: ${described.command} [--help | --version]`,
    '',
    described.runs ?? SERVES,
    '',
    `Its configuration is a YAML file named by ${CONFIG_FILE_ENV} (optional) and LADING_* environment variables, which`,
    'override the file: LADING_HTTP_ADDR sets http.addr. Every key, its default and its variable are in the',
    'Configuration table of README.md.',
    '',
    'Options:',
    '  --help, -h     print this help and exit',
    '  --version      print the version and exit',
    '',
  ].join('\n');
}

/**
 * Answers a process's command line: `--help` prints the usage, `--version` the version, and anything else is refused.
 * Returns the exit status when the process must stop here, or undefined (no arguments) when it should start.
 */
export function answerCommandLine(
  argv: readonly string[],
  described: ProcessDescription,
  version: () => LadingVersion,
  write: { out(text: string): void; err(text: string): void },
): number | undefined {
  if (argv.length === 0) return undefined;
  if (argv.includes('--help') || argv.includes('-h')) {
    write.out(processUsage(described));
    return 0;
  }
  if (argv.length === 1 && argv[0] === '--version') {
    write.out(`${versionLine(version())}\n`);
    return 0;
  }
  write.err(`lading-${described.service}: unknown argument ${argv.find((a) => a !== '--version') ?? argv[0]} (see ${described.command} --help)\n`);
  return 2;
}
