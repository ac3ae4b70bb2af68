/**
 * The floor for any Node gateway: a bare pass-through proxy over an undici Pool,
 * built as the side-by-side harness's anchor is (../shared/bench/anchors/
 * node-passthrough.mjs), so both benches divide by the same floor: the request
 * body is read whole, then sent; the answer is written back chunk by chunk as it
 * arrives (so SSE streams through). No auth, no parsing, no logging.
 *
 * Plain JavaScript on purpose: a .ts file would make Node load its type
 * stripper (amaro, WebAssembly), ~30 MB of RSS the harness's anchor does not
 * carry, and the peak-RSS ratio divides by this process's RSS. Measured with
 * the harness's load (wrk c=50, 5 interleaved rounds), run with the gateway's
 * own node flags on Node 24 and the project's undici, it costs what the
 * harness's anchor costs on the harness's Node 20 and undici 6: 44.2 vs 43.7
 * µs of CPU per request, 113 vs 106 MB peak RSS.
 *
 *   node bench/passthrough-proxy.mjs --upstream http://127.0.0.1:PORT [--port 0]
 *
 * Prints `{"port":N}` on stdout once listening; stops on SIGTERM/SIGINT.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({
  options: { upstream: { type: 'string' }, port: { type: 'string', default: '0' } },
});
if (!values.upstream) throw new Error('--upstream URL is required');
const pool = new Pool(values.upstream, { connections: 128, pipelining: 1 });
const HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'host',
  'upgrade',
  'proxy-connection',
  'te',
  'trailer',
]);

/** The headers minus the hop-by-hop ones (a `for…in` loop, as the anchor's: no entry arrays). */
function strip(headers) {
  const out = {};
  for (const name in headers) if (!HOP.has(name) && headers[name] !== undefined) out[name] = headers[name];
  return out;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  try {
    const body = req.method === 'GET' || req.method === 'HEAD' ? null : await readBody(req);
    const up = await pool.request({
      method: req.method,
      path: req.url ?? '/',
      headers: strip(req.headers),
      body,
    });
    res.writeHead(up.statusCode, strip(up.headers));
    for await (const chunk of up.body) res.write(chunk);
    res.end();
  } catch {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
    res.end('{"error":{"message":"upstream failed","type":"server_error","param":null,"code":null}}');
  }
});

server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
const stop = () => {
  server.close();
  server.closeAllConnections();
  pool.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
