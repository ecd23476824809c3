/**
 * The entry of a read worker thread in the bundled process (`dist/embedded/read-worker.cjs`, its own esbuild entry:
 * tools/build/bundle.ts): only the read path (read-worker.ts: the gateway, its proxies, the filesystem blob store, the
 * logger), not the embedded registry's services, PGlite, the bus, nor the OpenTelemetry SDK that main.ts's first
 * import starts. Loading the whole process's bundle cost each worker ~47 MB of resident memory, this one ~34 MB
 * (docs/benchmarks.md, "Read workers"). Under tsx and jest the workers run read-worker-thread.cjs instead.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { READ_WORKER_MARK, type ReadWorkerData, runReadWorker } from './read-worker';

if (!parentPort || !(workerData as Record<string, unknown> | null)?.[READ_WORKER_MARK]) {
  console.error('read-worker.cjs is a read worker of the embedded registry (dist/embedded/main.cjs starts it): it does not run on its own');
  process.exitCode = 1;
} else {
  runReadWorker(workerData as ReadWorkerData).catch((err: unknown) => {
    parentPort?.postMessage({ type: 'failed', message: (err as Error)?.message ?? String(err) });
    process.exit(1);
  });
}
