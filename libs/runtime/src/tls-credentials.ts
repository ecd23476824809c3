/**
 * The HTTPS listener's certificate and key (`http.tls.*`): read and checked once at start-up, where a missing or bad
 * file stops the process with one line naming it, and read again whenever the files change (cert-manager and
 * Let's Encrypt renew them in place), where a bad new pair is logged and the pair in use is kept.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { FSWatcher, readFileSync, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SecureContextOptions, createSecureContext } from 'node:tls';
import type { LadingConfig } from '@lading/config';
import type { Logger } from '@lading/telemetry';
import { createPollingLoop } from './polling-loop';

/** The paths of the certificate and key files, as configured. */
export interface TlsFiles {
  certificate: string;
  key: string;
}

/** The contents of a certificate file and its key file, as node's TLS options take them. */
export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

/** A certificate or key file that cannot be read or does not hold what it should; the message names the file. */
export class TlsFilesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsFilesError';
  }
}

/** The TLS files a configuration names, or null when it serves plain HTTP (the schema keeps both or neither set). */
export function tlsFilesOf(config: LadingConfig): TlsFiles | null {
  const { certificate, key } = config.http.tls;
  return certificate !== undefined && key !== undefined ? { certificate, key } : null;
}

function reason(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

/**
 * Checks that a pair is usable: the certificate file holds a certificate, the key file a private key, the key is the
 * certificate's, and node builds a secure context from them. Returns the certificate; throws a TlsFilesError naming
 * the file at fault.
 */
export function checkTlsPair(files: TlsFiles, pair: TlsPair): X509Certificate {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pair.cert);
  } catch (err) {
    throw new TlsFilesError(`${files.certificate} (http.tls.certificate) does not hold a PEM certificate: ${reason(err)}`);
  }
  let key;
  try {
    key = createPrivateKey(pair.key);
  } catch (err) {
    throw new TlsFilesError(`${files.key} (http.tls.key) does not hold an unencrypted PEM private key: ${reason(err)}`);
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new TlsFilesError(`${files.key} (http.tls.key) is not the private key of the certificate in ${files.certificate}`);
  }
  try {
    createSecureContext({ cert: pair.cert, key: pair.key });
  } catch (err) {
    throw new TlsFilesError(`${files.certificate} and ${files.key} (http.tls.*) cannot serve TLS: ${reason(err)}`);
  }
  return certificate;
}

/** Reads and checks the pair at start-up; throws a TlsFilesError naming the file that cannot be read or is bad. */
export function readTlsPair(files: TlsFiles): TlsPair {
  const read = (file: string, key: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new TlsFilesError(`cannot read ${file} (${key}): ${reason(err)}`);
    }
  };
  const pair = { cert: read(files.certificate, 'http.tls.certificate'), key: read(files.key, 'http.tls.key') };
  checkTlsPair(files, pair);
  return pair;
}

/** The server side of a reload: an HTTPS (or TLS) server's `setSecureContext`. */
export interface SecureContextTarget {
  setSecureContext(options: SecureContextOptions): void;
}

/** Options of `watchTlsFiles`. */
export interface TlsWatchOptions {
  /**
   * How often the files are read again without a change event (filesystems where watching misses changes, such as
   * NFS); default one minute.
   */
  pollMs?: number;
  /** How long change events must stay quiet before the files are read (a renewal writes two files); default 250 ms. */
  settleMs?: number;
}

/** A running reload of the certificate and key (see watchTlsFiles). */
export interface TlsWatcher {
  /** Stops watching and polling. */
  stop(): Promise<void>;
}

function samePair(a: TlsPair, b: TlsPair): boolean {
  return a.cert.equals(b.cert) && a.key.equals(b.key);
}

/**
 * Serves a renewed certificate without a restart: watches the directories of both files (a directory sees the
 * atomic renames and symlink swaps with which Kubernetes updates a mounted secret, where a watch on the file would
 * follow the old inode), reads them again a moment after a change and at every poll, and swaps a new usable pair in
 * with `setSecureContext`: connections opened afterwards get it, open ones keep theirs. A pair that is not usable (a
 * renewal caught between its two writes, a wrong key) is logged once and the pair in use is kept.
 */
export function watchTlsFiles(server: SecureContextTarget, files: TlsFiles, served: TlsPair, logger: Logger, options: TlsWatchOptions = {}): TlsWatcher {
  let current = served;
  /** The last problem logged, so that a poll finding the same problem does not log it again. */
  let lastProblem: string | null = null;

  /** Reads the files and serves them if they changed and make a usable pair. */
  async function check(): Promise<void> {
    let next: TlsPair;
    try {
      next = { cert: await readFile(files.certificate), key: await readFile(files.key) };
    } catch (err) {
      return reject(`cannot read ${(err as NodeJS.ErrnoException).path ?? 'the TLS files'}: ${reason(err)}`);
    }
    if (samePair(current, next)) {
      lastProblem = null;
      return;
    }
    let certificate: X509Certificate;
    try {
      certificate = checkTlsPair(files, next);
      server.setSecureContext({ cert: next.cert, key: next.key });
    } catch (err) {
      return reject((err as Error).message);
    }
    current = next;
    lastProblem = null;
    logger.info({ subject: certificate.subject, serialNumber: certificate.serialNumber, validTo: certificate.validTo }, 'serving the renewed TLS certificate');
  }

  function reject(problem: string): void {
    if (problem !== lastProblem) logger.warn({ problem }, 'the TLS files changed but are not a usable pair: serving the previous certificate');
    lastProblem = problem;
  }

  const loop = createPollingLoop({
    step: check,
    idleMs: options.pollMs ?? 60_000,
    delayFirstStep: true,
    onError: (err) => logger.warn({ err }, 'checking the TLS files failed'),
  });
  let settle: NodeJS.Timeout | undefined;
  const changed = () => {
    clearTimeout(settle);
    settle = setTimeout(() => loop.wake(), options.settleMs ?? 250).unref();
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set([path.dirname(path.resolve(files.certificate)), path.dirname(path.resolve(files.key))])) {
    try {
      const watcher = watch(dir, { persistent: false }, changed);
      watcher.on('error', (err) => logger.warn({ dir, err: reason(err) }, 'watching a TLS directory failed: the files are still read at every poll'));
      watchers.push(watcher);
    } catch (err) {
      logger.warn({ dir, err: reason(err) }, 'cannot watch a TLS directory: the files are read at every poll only');
    }
  }
  loop.start();

  return {
    async stop() {
      clearTimeout(settle);
      for (const watcher of watchers) watcher.close();
      await loop.stop();
    },
  };
}
