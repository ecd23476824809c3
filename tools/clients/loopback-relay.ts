/**
 * A TCP relay from [::1]:<port> to 127.0.0.1:<port>, bytes passed through untouched (TLS stays end to end).
 * dockerd treats every registry in 127.0.0.0/8 as insecure and skips certificate checks there; a name that resolves
 * to ::1 is a secure registry, so with this relay a registry listening on 127.0.0.1 can be reached the way a real one
 * is, its certificate verified against the CA in /etc/docker/certs.d (docker.sh). As a command it runs until SIGTERM
 * or SIGINT, then prints how many connections it carried.
 * `node --import tsx tools/clients/loopback-relay.ts <port>`
 */
import net from 'node:net';

/** A running relay (see startLoopbackRelay). */
export interface LoopbackRelay {
  /** Connections accepted so far. */
  connections(): number;
  /** Stops listening and cuts the connections still open. */
  close(): Promise<void>;
}

/** Listens on [::1]:`port` and pipes each connection to 127.0.0.1:`port`; resolves once it listens. */
export async function startLoopbackRelay(port: number): Promise<LoopbackRelay> {
  let connections = 0;
  const open = new Set<net.Socket>();
  // Half-open sockets, so that one side's end passes through while the other still sends.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    connections += 1;
    const upstream = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const close = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
    };
    open.add(client);
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '::1', resolve);
  });
  return {
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error('usage: loopback-relay.ts <port>');
  const relay = await startLoopbackRelay(port);
  console.log(`relay: [::1]:${port} -> 127.0.0.1:${port}`);
  const stop = () => {
    console.log(`relay: ${relay.connections()} connections`);
    void relay.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop).on('SIGINT', stop);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`relay: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
