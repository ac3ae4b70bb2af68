// Preloaded (--import) into a proxy under `npm run bench:first-byte`: the moments, read from
// Node's and undici's diagnostics channels, that split a stream's first byte into its parts:
//   Q  a client request parsed (http.server.request.start)
//   H  the route handler called (Fastify's handler tracing channel; the gateway only)
//   C  the upstream request made (undici:request:create): the proxy's synchronous start is Q → C
//   S  the upstream request written to its socket (undici:client:sendHeaders)
//   R  the upstream's answer headers parsed (undici:request:headers): its first chunk comes in
//      the same read, so R → R of consecutive answers is the proxy's relay of one first chunk
//   E  the upstream's answer complete (undici:request:trailers): a JSON answer's body read
//   W  the first write to the client's response (ServerResponse write or end)
// Times are CLOCK_MONOTONIC milliseconds (process.hrtime), the clock the load generator's
// own timings read, so a client's send and first byte line up with these.
// `marks` is every Q, C, S and R in order; `requests` links one request's marks: its C is the
// first upstream request made after its Q (a start runs to its upstream request before the
// next request event is read), its S, R and E are that upstream request's, its W its response's.
// On SIGUSR2 both are written as JSON to <tmpdir>/first-byte-probe-<pid>.json. Subscribing costs
// the proxies alike (a closure call per mark), and only while this tool runs.
import dc from 'node:diagnostics_channel';
import { renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const now = () => Number(process.hrtime.bigint()) / 1e6;
const marks = [];
const requests = [];
/** The request whose start has not yet made its upstream request. */
let starting;
const byUpstream = new WeakMap();
const byResponse = new WeakMap();

dc.subscribe('http.server.request.start', ({ response }) => {
  const t = now();
  marks.push('Q', t);
  starting = { Q: t };
  requests.push(starting);
  byResponse.set(response, starting);
});
dc.subscribe('tracing:fastify.request.handler:start', () => {
  if (starting !== undefined) starting.H ??= now();
});
dc.subscribe('undici:request:create', ({ request }) => {
  const t = now();
  marks.push('C', t);
  if (starting === undefined) return;
  starting.C = t;
  byUpstream.set(request, starting);
  starting = undefined;
});
dc.subscribe('undici:client:sendHeaders', ({ request }) => {
  const t = now();
  marks.push('S', t);
  const r = byUpstream.get(request);
  if (r !== undefined) r.S = t;
});
dc.subscribe('undici:request:headers', ({ request }) => {
  const t = now();
  marks.push('R', t);
  const r = byUpstream.get(request);
  if (r !== undefined) r.R = t;
});
dc.subscribe('undici:request:trailers', ({ request }) => {
  const r = byUpstream.get(request);
  if (r !== undefined) r.E = now();
});
for (const method of ['write', 'end']) {
  const original = http.ServerResponse.prototype[method];
  http.ServerResponse.prototype[method] = function (...args) {
    const r = byResponse.get(this);
    if (r !== undefined) r.W ??= now();
    return original.apply(this, args);
  };
}
process.on('SIGUSR2', () => {
  // Written aside and renamed into place, so the reader never sees half a file.
  const file = join(tmpdir(), `first-byte-probe-${process.pid}.json`);
  writeFileSync(`${file}.part`, JSON.stringify({ marks, requests }));
  renameSync(`${file}.part`, file);
  marks.length = 0;
  requests.length = 0;
  starting = undefined;
});
