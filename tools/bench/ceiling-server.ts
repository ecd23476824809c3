/**
 * The ceiling of this box for the manifest GET: a raw `node:http` server that answers one path with one manifest's
 * bytes held in memory, with the headers a registry sends, and 404 otherwise. No framework, no lookup, no logging.
 * Usage: `node tools/bench/ceiling-server.ts <port> <path> <manifest file> <media type> <digest>` (run with tsx).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [port, path, file, mediaType, digest] = process.argv.slice(2);
const body = readFileSync(file);
const headers = {
  'content-type': mediaType,
  'content-length': String(body.length),
  'docker-content-digest': digest,
  etag: `"${digest}"`,
  'docker-distribution-api-version': 'registry/2.0',
};

const server = createServer((req, res) => {
  if (req.url === path && (req.method === 'GET' || req.method === 'HEAD')) {
    res.writeHead(200, headers);
    res.end(req.method === 'GET' ? body : undefined);
  } else if (req.url === '/v2/') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
    res.end('{}');
  } else {
    res.writeHead(404, { 'content-length': '0' });
    res.end();
  }
});
server.keepAliveTimeout = 30_000;
server.listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
