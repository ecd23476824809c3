/**
 * Writes a throwaway CA and a server certificate it signed into a directory, for the TLS client round trips:
 * `ca.crt`, `tls.crt`, `tls.key` (the pair a registry serves) and `other-ca.crt` (an unrelated CA, which a client
 * must refuse the server with).
 * `node --import tsx tools/clients/test-ca.ts <dir> <host>...` (IP addresses and DNS names the certificate names)
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { createTestCa } from '@lading/testing';

function main(): void {
  const [dir, ...hosts] = process.argv.slice(2);
  if (!dir || hosts.length === 0) throw new Error('usage: test-ca.ts <dir> <host>...');
  mkdirSync(dir, { recursive: true });
  const ca = createTestCa();
  const other = createTestCa();
  try {
    const server = ca.issue(hosts[0], hosts);
    copyFileSync(ca.certFile, path.join(dir, 'ca.crt'));
    copyFileSync(server.certFile, path.join(dir, 'tls.crt'));
    copyFileSync(server.keyFile, path.join(dir, 'tls.key'));
    copyFileSync(other.certFile, path.join(dir, 'other-ca.crt'));
  } finally {
    ca.remove();
    other.remove();
  }
}

main();
