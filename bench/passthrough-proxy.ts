/**
 * The floor for any Node gateway: a bare pass-through proxy over an undici Pool,
 * built as the side-by-side harness's anchor is (../shared/bench/anchors/
 * node-passthrough.mjs), so both benches divide by the same floor: the request
 * body is read whole, then sent; the answer is written back chunk by chunk as it
 * arrives (so SSE streams through). No auth, no parsing, no logging.
 *
 *   node bench/passthrough-proxy.ts --upstream http://127.0.0.1:PORT [--port 0]
 *
 * Prints `{"port":N}` on stdout once listening; stops on SIGTERM/SIGINT.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({
  options: { upstream: { type: 'string' }, port: { type: 'string', default: '0' } },
});
if (!values.upstream) throw new Error('--upstream URL is required');
const pool = new Pool(values.upstream, { connections: 128, keepAliveTimeout: 30_000 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'upgrade', 'proxy-connection']);

function strip(headers: http.IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && !HOP.has(name)) out[name] = value;
  return out;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

const server = http.createServer({ noDelay: true, keepAliveTimeout: 72_000 }, async (req, res) => {
  try {
    const body = req.method === 'GET' || req.method === 'HEAD' ? null : await readBody(req);
    const up = await pool.request({
      method: req.method as 'POST',
      path: req.url ?? '/',
      headers: strip(req.headers),
      body,
    });
    res.writeHead(up.statusCode, strip(up.headers as http.IncomingHttpHeaders));
    for await (const chunk of up.body) res.write(chunk);
    res.end();
  } catch {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
    res.end('{"error":{"message":"upstream failed","type":"server_error","param":null,"code":null}}');
  }
});

server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
const stop = (): void => {
  server.close();
  server.closeAllConnections();
  pool.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
