import { answerCommandLine, processUsage } from './command-line';

const described = { service: 'blob', about: 'the blob service.', command: 'node dist/blob/main.cjs' };
const version = () => ({ name: 'lading', version: '1.2.3' });

function answer(...argv: string[]) {
  const written = { out: '', err: '' };
  const status = answerCommandLine(argv, described, version, { out: (t) => (written.out += t), err: (t) => (written.err += t) });
  return { status, ...written };
}

describe('answerCommandLine', () => {
  it('lets the process start when there are no arguments', () => {
    expect(answer()).toEqual({ status: undefined, out: '', err: '' });
  });

  it.each([['--help'], ['-h'], ['--version', '--help']])('prints the usage for %s and stops with status 0', (...argv) => {
    expect(answer(...argv)).toEqual({ status: 0, out: processUsage(described), err: '' });
  });

  it('prints the version and stops with status 0 for --version', () => {
    expect(answer('--version')).toEqual({ status: 0, out: 'lading 1.2.3\n', err: '' });
  });

  it('names the commit when the version knows it', () => {
    const written: string[] = [];
    answerCommandLine(['--version'], described, () => ({ name: 'lading', version: '1.2.3', commit: 'abc1234' }), { out: (t) => written.push(t), err: () => undefined });
    expect(written).toEqual(['lading 1.2.3 (commit abc1234)\n']);
  });

  it.each([['--port=80'], ['start'], ['--version', 'extra']])('refuses %s with status 2, naming it and pointing at --help', (...argv) => {
    const { status, out, err } = answer(...argv);
    expect(status).toBe(2);
    expect(out).toBe('');
    expect(err).toBe(`lading-blob: unknown argument ${argv.find((a) => a !== '--version')} (see node dist/blob/main.cjs --help)\n`);
  });
});

describe('processUsage', () => {
  it('says what the process is, how it is configured and where the keys are documented', () => {
    const usage = processUsage(described);
    expect(usage.split('\n')[0]).toBe('lading-blob: the blob service.');
    expect(usage).toContain('Usage: node dist/blob/main.cjs [--help | --version]');
    expect(usage).toContain('LADING_CONFIG');
    expect(usage).toContain('LADING_* environment variables');
    expect(usage).toContain('Configuration table of README.md');
  });

  it('says a server serves until a signal, and a one-shot what it does instead', () => {
    expect(processUsage(described)).toContain('Without options it starts and serves until SIGTERM or SIGINT.');
    const oneShot = processUsage({ ...described, service: 'migrate', runs: 'Without options it migrates and exits.' });
    expect(oneShot).toContain('\nWithout options it migrates and exits.\n');
    expect(oneShot).not.toContain('serves until');
  });
});
