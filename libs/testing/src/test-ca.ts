/**
 * A throwaway certificate authority for TLS tests, made with the `openssl` command: a CA, and server certificates it
 * signs (for 127.0.0.1 and localhost unless told other names), each pair written as PEM files into a temporary
 * directory.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A certificate and its key, as PEM files and their contents. */
export interface TestCertificate {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

/** A throwaway CA (see createTestCa). */
export interface TestCa extends TestCertificate {
  /**
   * Signs a server certificate with this CA for `hosts` (IP addresses and DNS names; 127.0.0.1 and localhost by
   * default); `commonName` tells certificates apart.
   */
  issue(commonName: string, hosts?: readonly string[]): TestCertificate;
  /** Deletes the CA and every certificate it issued. */
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function read(certFile: string, keyFile: string): TestCertificate {
  return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
}

/** Creates a CA in a temporary directory with `openssl`; its certificates are valid for a day. */
export function createTestCa(): TestCa {
  const dir = mkdtempSync(path.join(tmpdir(), 'lading-test-ca-'));
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=Lading test CA', '-keyout', 'ca.key', '-out', 'ca.crt'], dir);
  let issued = 0;
  return {
    ...read(path.join(dir, 'ca.crt'), path.join(dir, 'ca.key')),
    issue(commonName, hosts = ['127.0.0.1', 'localhost']) {
      const name = `server-${++issued}`;
      const altNames = hosts.map((host) => (isIP(host) ? `IP:${host}` : `DNS:${host}`)).join(',');
      writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${altNames}\nextendedKeyUsage=serverAuth\n`);
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${commonName}`, '-keyout', `${name}.key`, '-out', `${name}.csr`], dir);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.crt`], dir);
      return read(path.join(dir, `${name}.crt`), path.join(dir, `${name}.key`));
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
