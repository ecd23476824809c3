/** A loopback port for a test's server. */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/** A port the kernel just handed out on 127.0.0.1 and took back: free now, unlike a guess in the ephemeral range. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
