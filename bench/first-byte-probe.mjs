// Preloaded (--import) into a proxy under `npm run bench:first-byte`: the moments, read from
// Node's and undici's diagnostics channels, that split a stream's first byte into its parts:
//   Q  a client request parsed (http.server.request.start)
//   C  the upstream request made (undici:request:create): the proxy's synchronous start is Q → C
//   S  the upstream request written to its socket (undici:client:sendHeaders)
//   R  the upstream's answer headers parsed (undici:request:headers): its first chunk comes in
//      the same read, so R → R of consecutive answers is the proxy's relay of one first chunk
// On SIGUSR2 the marks are written as JSON to <tmpdir>/first-byte-probe-<pid>.json. Subscribing costs the
// proxies alike (a closure call per mark), and only while this tool runs.
import dc from 'node:diagnostics_channel';
import { renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const marks = [];
const mark = (kind) => () => marks.push(kind, performance.now());
dc.subscribe('http.server.request.start', mark('Q'));
dc.subscribe('undici:request:create', mark('C'));
dc.subscribe('undici:client:sendHeaders', mark('S'));
dc.subscribe('undici:request:headers', mark('R'));
process.on('SIGUSR2', () => {
  // Written aside and renamed into place, so the reader never sees half a file.
  const file = join(tmpdir(), `first-byte-probe-${process.pid}.json`);
  writeFileSync(`${file}.part`, JSON.stringify(marks));
  renameSync(`${file}.part`, file);
  marks.length = 0;
});
