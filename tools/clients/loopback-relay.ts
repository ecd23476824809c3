/**
 * A TCP relay from [::1]:<port> to 127.0.0.1:<port>, bytes passed through untouched (TLS stays end to end).
 * dockerd treats every registry in 127.0.0.0/8 as insecure and skips certificate checks there; a name that resolves
 * to ::1 is a secure registry, so with this relay a registry listening on 127.0.0.1 can be reached the way a real one
 * is, its certificate verified against the CA in /etc/docker/certs.d. Runs until SIGTERM or SIGINT, then prints
 * how many connections it carried.
 * `node --import tsx tools/clients/loopback-relay.ts <port>`
 */
import net from 'node:net';

function main(): void {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error('usage: loopback-relay.ts <port>');
  let connections = 0;
  const server = net.createServer((client) => {
    connections += 1;
    const upstream = net.connect(port, '127.0.0.1');
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream).pipe(client);
  });
  server.listen(port, '::1', () => console.log(`relay: [::1]:${port} -> 127.0.0.1:${port}`));
  const stop = () => {
    console.log(`relay: ${connections} connections`);
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop).on('SIGINT', stop);
}

main();
