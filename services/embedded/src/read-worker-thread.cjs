// The body of a read worker under tsx and jest (see read-workers.ts): plain CommonJS, so that the worker thread can be
// started from the TypeScript sources; it registers tsx's require hook and runs read-worker.ts. The bundled process
// (dist/embedded/main.cjs) does not use this file: its workers run dist/embedded/read-worker.cjs (read-worker-main.ts).
'use strict';
const process = require('node:process');
const { parentPort, workerData } = require('node:worker_threads');
require('tsx/cjs');
require('./read-worker.ts')
  .runReadWorker(workerData)
  .catch((err) => {
    parentPort.postMessage({ type: 'failed', message: err && err.message ? err.message : String(err) });
    process.exit(1);
  });
