/**
 * The test LDAP directory `tools/infra/slapd` runs (seeded from tools/infra/test/ldap-seed.ldif), and a TCP relay
 * in front of it that a test can cut to play a directory outage without stopping the directory other tests share.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { REPO_ROOT } from './infra';

/** Where the test directory listens and how to administer it (the `INFRA_LDAP_*` lines of `.infra/env`). */
export interface TestDirectory {
  url: string;
  ldapsUrl: string;
  /** The suffix: users under `ou=people,<base>`, groups under `ou=groups,<base>`. */
  base: string;
  adminDn: string;
  adminPassword: string;
  /** The PEM of the CA that signed the directory's certificate. */
  caFile: string;
}

/** Reads the test directory's settings; throws a sentence saying how to start it when they are missing. */
export function testDirectory(): TestDirectory {
  const file = path.join(REPO_ROOT, '.infra', 'env');
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // reported below
  }
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(INFRA_LDAPS?_[A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  const need = (key: string) => {
    if (!env[key]) throw new Error(`${file} has no ${key}: start the test directory with tools/infra/infra up slapd (tools/infra/infra up starts it too)`);
    return env[key];
  };
  return {
    url: need('INFRA_LDAP_URL'),
    ldapsUrl: need('INFRA_LDAPS_URL'),
    base: need('INFRA_LDAP_BASE'),
    adminDn: need('INFRA_LDAP_ADMIN_DN'),
    adminPassword: need('INFRA_LDAP_ADMIN_PASSWORD'),
    caFile: need('INFRA_LDAP_CA_FILE'),
  };
}

/** A TCP relay on loopback: `cut()` closes its port and every connection through it, `restore()` opens it again. */
export interface TcpRelay {
  /** Its port on 127.0.0.1 (the same after a restore). */
  port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a relay from a free port on 127.0.0.1 to `host:port`. */
export async function startTcpRelay(host: string, port: number): Promise<TcpRelay> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | null = null;
  let relayPort = 0;

  async function open(): Promise<void> {
    const s = net.createServer((client) => {
      const upstream = net.connect(port, host);
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(relayPort, '127.0.0.1', () => resolve());
    });
    relayPort = (s.address() as net.AddressInfo).port;
    server = s;
  }

  async function shut(): Promise<void> {
    const s = server;
    server = null;
    for (const socket of sockets) socket.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  await open();
  return {
    get port() {
      return relayPort;
    },
    cut: shut,
    restore: open,
    close: shut,
  };
}
