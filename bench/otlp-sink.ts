/**
 * A stand-in OTLP/HTTP collector for benchmarks: accepts `POST /v1/traces`,
 * counts the spans in each export (by their `"spanId"` keys, without parsing
 * the JSON: the sink must cost little, and it runs in its own process so
 * its CPU is never counted as the gateway's), answers as a collector does.
 * `GET /count` says what arrived.
 *
 *   node bench/otlp-sink.ts [--port 0]     prints {"port":N} once listening
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
const received = { exports: 0, spans: 0, bytes: 0 };
const SPAN_ID = '"spanId"';

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/count') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(received));
    return;
  }
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => {
    body += chunk;
  });
  req.on('end', () => {
    received.exports++;
    received.bytes += Buffer.byteLength(body);
    for (let at = body.indexOf(SPAN_ID); at !== -1; at = body.indexOf(SPAN_ID, at + SPAN_ID.length)) {
      received.spans++;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.on(signal, () => server.close(() => process.exit(0)));
