/**
 * Test support: a webhook receiver on 127.0.0.1 that records every request (headers and raw body) and answers as
 * the test says: a status (with headers, after a delay), or not at all while it is down (connections refused).
 */
import { once } from 'node:events';
import http, { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A request the receiver got. */
export interface ReceivedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  /** The status it was answered with. */
  status: number;
}

/** How to answer one request. */
export interface ReceiverAnswer {
  status: number;
  headers?: Record<string, string>;
  delayMs?: number;
}

/** A running receiver. */
export interface TestReceiver {
  /** `http://127.0.0.1:<port>` */
  url: string;
  requests: ReceivedRequest[];
  /** Sets how requests are answered (200 by default). */
  answer(fn: (req: { path: string; headers: IncomingHttpHeaders; body: string; index: number }) => ReceiverAnswer): void;
  /** Stops listening and drops open connections: deliveries get connection errors. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a receiver on an ephemeral loopback port. */
export async function startTestReceiver(): Promise<TestReceiver> {
  const requests: ReceivedRequest[] = [];
  let answer: Parameters<TestReceiver['answer']>[0] = () => ({ status: 200 });
  let index = 0;
  const sockets = new Set<Socket>();
  const server: Server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const reply = answer({ path: req.url ?? '/', headers: req.headers, body, index: index++ });
      const send = () => {
        requests.push({ path: req.url ?? '/', headers: req.headers, body, at: Date.now(), status: reply.status });
        res.writeHead(reply.status, reply.headers ?? {});
        res.end();
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  let listening = true;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    answer(fn) {
      answer = fn;
    },
    async down() {
      if (!listening) return;
      listening = false;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
    async up() {
      if (listening) return;
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
      listening = true;
    },
    async close() {
      if (listening) {
        listening = false;
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await closed;
      }
    },
  };
}
