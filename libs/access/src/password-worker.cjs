// The body of a password-hashing worker thread (see password-pool.ts). Plain CommonJS so that one file loads the
// same way under tsx, jest and the esbuild bundle: the pool finds it next to its own source (`__dirname`), and it
// requires hash-wasm from node_modules like any other package. It knows no parameters of its own: the pool passes
// the argon2id parameters in `workerData`, so they are written once, in passwords.ts.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { argon2Verify, argon2id } = require('hash-wasm');

const params = workerData.params;

async function run(job) {
  if (job.op === 'hash') {
    return argon2id({ ...params, password: job.password, salt: Buffer.from(job.salt, 'base64'), outputType: 'encoded' });
  }
  try {
    return await argon2Verify({ password: job.password, hash: job.encoded });
  } catch {
    return false;
  }
}

parentPort.on('message', (job) => {
  run(job).then(
    (result) => parentPort.postMessage({ id: job.id, result }),
    (error) => parentPort.postMessage({ id: job.id, error: String(error && error.message ? error.message : error) }),
  );
});
