/**
 * The loopback relay: what a client sends to [::1]:<port> reaches the server on 127.0.0.1:<port> unchanged, both
 * ways, and each connection is counted.
 */
import { once } from 'node:events';
import net from 'node:net';
import { freePort } from '@lading/testing';
import { LoopbackRelay, startLoopbackRelay } from './loopback-relay';

/** Sends `data` to [::1]:port, half-closes, and collects everything that comes back. */
async function exchange(port: number, data: Buffer): Promise<Buffer> {
  const socket = net.connect(port, '::1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(socket, 'connect');
  socket.end(data);
  await once(socket, 'close');
  return Buffer.concat(chunks);
}

describe('startLoopbackRelay', () => {
  let server: net.Server;
  let relay: LoopbackRelay;
  let port: number;
  const seen: string[] = [];

  beforeAll(async () => {
    port = await freePort();
    // Answers each connection with its own address and the reversed bytes it received.
    server = net.createServer((socket) => {
      const chunks: Buffer[] = [];
      seen.push(socket.localAddress ?? '');
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('end', () => socket.end(Buffer.concat(chunks).reverse()));
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    relay = await startLoopbackRelay(port);
  });
  afterAll(async () => {
    await relay.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('passes bytes both ways between [::1] and 127.0.0.1 on the same port, and counts connections', async () => {
    const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
    const back = await exchange(port, data);
    expect(back.equals(Buffer.from(data).reverse())).toBe(true);
    expect(await exchange(port, Buffer.from('second'))).toEqual(Buffer.from('dnoces'));
    expect(seen).toEqual(['127.0.0.1', '127.0.0.1']);
    expect(relay.connections()).toBe(2);
  });
});
