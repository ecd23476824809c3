/**
 * A process that exercises every instrumentation Lading relies on, the way a service does: its first import
 * starts telemetry (probe-telemetry.ts), then express serves requests that query Postgres (pg), produce to Kafka
 * (kafkajs), call another endpoint (undici) and log (pino); a Kafka consumer handles the message. It prints JSON
 * lines on stdout (`{"probe": ...}` reports and its pino log lines), waits for SIGTERM, then flushes and exits.
 * Run by instrumentations.spec.ts with LADING_DATABASE_URL, LADING_KAFKA_BROKERS, LADING_KAFKA_TOPIC and OTEL_*.
 */
import { telemetry } from './probe-telemetry';
import { subscribe } from 'node:diagnostics_channel';
import { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { logLevel } from 'kafkajs';
import { createKafkaClient } from '@lading/events';
import { Pool } from 'pg';
import { request } from 'undici';
import { loadConfig } from '@lading/config';
import { sendOciError } from '@lading/http';
import { OciError } from '@lading/oci';
import { createHttpTelemetry, createLogger, createRegistryMetrics, currentTraceparent, withSpan } from '@lading/telemetry';

// Where every outgoing HTTP request went, the exporters' included: with nothing configured, only to the probe itself.
const outgoing: string[] = [];
subscribe('http.client.request.start', (message) => {
  const req = (message as { request: { host?: string; path?: string } }).request;
  outgoing.push(`http ${req.host}${req.path}`);
});
subscribe('undici:request:create', (message) => {
  const req = (message as { request: { origin?: string; path?: string } }).request;
  outgoing.push(`undici ${req.origin}${req.path}`);
});

function report(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ probe: fields })}\n`);
}

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ service: 'probe', level: 'info' });
  const metrics = createRegistryMetrics(telemetry.meter, telemetry.tallies);
  const metricsAddress = await telemetry.serveMetrics(config.telemetry.metricsAddr, (err) => logger.warn({ err }, 'no metrics port'));
  const useInfra = config.kafka.brokers.length > 0 && config.database.url !== undefined;

  const pool = useInfra ? new Pool({ connectionString: config.database.url, max: 2 }) : undefined;
  const kafka = useInfra ? createKafkaClient({ clientId: 'lading-probe', brokers: config.kafka.brokers, logLevel: logLevel.NOTHING }) : undefined;
  const producer = kafka?.producer();
  const consumer = kafka?.consumer({ groupId: `${config.kafka.topic}-probe` });
  let consumed: (traceparent: string | undefined) => void = () => undefined;
  const consumedOnce = new Promise<string | undefined>((resolve) => (consumed = resolve));
  if (kafka && producer && consumer) {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: config.kafka.topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    await producer.connect();
    await consumer.connect();
    await consumer.subscribe({ topic: config.kafka.topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async () => {
        logger.info('consumed the message');
        consumed(currentTraceparent());
      },
    });
  }

  const app = express();
  app.use(createHttpTelemetry({ metrics, routeOf: (req) => (req.path === '/work' ? 'work' : undefined) }));
  app.get('/leaf', (_req, res) => {
    res.send('leaf');
  });
  app.get('/work', async (req, res) => {
    if (pool) await pool.query('SELECT 1 AS one');
    if (producer) await producer.send({ topic: config.kafka.topic, messages: [{ key: 'k', value: 'v' }] });
    const port = (req.socket.address() as AddressInfo).port;
    await request(`http://127.0.0.1:${port}/leaf`).then((r) => r.body.text());
    logger.info({ headers: { authorization: 'Bearer probe-secret-token-123' } }, 'handled work');
    res.json({ traceparent: currentTraceparent() });
  });
  // Answered by the registry's one error renderer, as every OCI error is.
  app.get('/fail', (_req, res) => {
    sendOciError(res, new OciError('MANIFEST_UNKNOWN'));
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const work = await withSpan('probe.drive', {}, async () => {
    const answer = (await request(`${base}/work`).then((r) => r.body.json())) as { traceparent?: string };
    await request(`${base}/fail`).then((r) => r.body.text());
    return answer;
  });
  // Listen for SIGTERM before saying "done": the test stops the probe as soon as it reads that line.
  process.once('SIGTERM', () => {
    void (async () => {
      server.close();
      await consumer?.disconnect();
      await producer?.disconnect();
      await pool?.end();
      await telemetry.shutdown();
      report({ exited: true, outgoing });
      process.exit(0);
    })();
  });
  const consumerTraceparent = kafka ? await consumedOnce : undefined;
  report({
    done: true,
    tracing: telemetry.tracing,
    // The http instrumentation wraps the server's emit (shimmer marks wrapped functions).
    httpPatched: '__wrapped' in Server.prototype.emit,
    serviceName: telemetry.serviceName,
    workTraceparent: work.traceparent,
    consumerTraceparent,
    metricsUrl: metricsAddress ? `http://127.0.0.1:${metricsAddress.port}/metrics` : null,
    base,
  });
}

main().catch((err) => {
  process.stderr.write(`probe failed: ${(err as Error)?.stack ?? err}\n`);
  process.exit(1);
});
