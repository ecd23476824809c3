/**
 * Runs the CI webhook receiver:
 *
 *   CI_WEBHOOK_SECRET=whsec_... node --import tsx tools/examples/ci-webhook/main.ts \
 *       --listen 127.0.0.1:8080 --registry-host registry.example.com --repository 'team/*' --tag 'v*' \
 *       -- ./deploy.sh            # runs with IMAGE=registry.example.com/team/app@sha256:...
 *
 * The secret comes from the environment (the admin API shows it once, when the subscription is created); the
 * command follows `--` and runs without a shell.
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { createCiWebhookReceiver } from './ci-webhook-receiver';

const USAGE = `usage: CI_WEBHOOK_SECRET=whsec_... ci-webhook --registry-host HOST [--listen host:port] [--repository GLOB] [--tag GLOB] -- COMMAND [ARGS...]\n`;

function fail(message: string): never {
  process.stderr.write(`ci-webhook: ${message}\n${USAGE}`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      listen: { type: 'string', default: '127.0.0.1:8080' },
      'registry-host': { type: 'string' },
      repository: { type: 'string', default: '**' },
      tag: { type: 'string', default: '*' },
      help: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
} catch (err) {
  fail((err as Error).message);
}
const { values, positionals } = parsed;
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const secret = process.env.CI_WEBHOOK_SECRET;
if (!secret) fail('set CI_WEBHOOK_SECRET to the subscription secret');
if (!values['registry-host']) fail('--registry-host is required (the address CI pulls images from)');
if (positionals.length === 0) fail('give the command to run after --');
const separator = values.listen.lastIndexOf(':');
const host = values.listen.slice(0, separator);
const port = Number(values.listen.slice(separator + 1));

const receiver = createCiWebhookReceiver({
  // During a rotation: CI_WEBHOOK_SECRET=whsec_old,whsec_new until every delivery is signed with the new one.
  secret: secret.split(','),
  registryHost: values['registry-host'],
  rules: [{ repository: values.repository, tag: values.tag, command: positionals }],
  onJob: (job) => {
    process.stdout.write(`ci-webhook: ${job.push.repository}:${job.push.tag} -> running ${job.command.join(' ')} for ${job.image}\n`);
    void job.exitCode.then((code) => process.stdout.write(`ci-webhook: ${job.image}: exit ${code}\n`));
  },
});
const server = createServer(receiver.handler);
server.listen(port, host, () => process.stdout.write(`ci-webhook: listening on http://${values.listen}\n`));
const shutdown = () => server.close(() => void receiver.idle().then(() => process.exit(0)));
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
