/**
 * The server plumbing the mock upstreams share (mock-upstream.ts for OpenAI, mock-anthropic.ts,
 * mock-gemini.ts): one real HTTP server on 127.0.0.1, the lifecycle of each exchange (client
 * abort vs. the server's own resets), the recording of requests, the behaviour selection
 * (directive → queue → default → normal answer), the waiters tests block on, `reset` and `close`.
 *
 * Everything about a wire format (routes, bodies, SSE framing, error envelopes, faults) stays in
 * the mock that speaks it: it hands `listen` one handler per request and renders the answers.
 *
 * The OpenAI mock serves the benchmark at 1,000+ requests/s, so the per-request path allocates
 * nothing beyond the exchange, its abort controller and the listeners it needs, and takes no
 * clock reading when recording is off.
 */

import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export const DEFAULT_WAIT_MS = 5000;

/** What every mock records of a request; each mock narrows `behaviour` to its own kinds. */
export interface RecordedExchange {
  /** Sequence number, from 1, in order of arrival. */
  id: number;
  method: string;
  /** Request target as received (with any query string). */
  path: string;
  /** Header names are lower-case (as node:http gives them). */
  headers: IncomingHttpHeaders;
  /** Parsed JSON body, or the raw text if it is not JSON (`undefined` for an empty body). */
  body: unknown;
  /** Which behaviour answered: `ok` for a normal answer, a behaviour kind, `auth` or `invalid`. */
  behaviour: string;
  /** Response status, once headers were sent. */
  status?: number;
  /** Epoch milliseconds (sub-millisecond precision, monotonic within the process). */
  receivedAt: number;
  /** When the status line and headers were handed to the socket. */
  firstByteAt?: number;
  /** When the whole response was handed to the socket. */
  completedAt?: number;
  /** True when the client closed the connection before the response was complete. Never set by the server's own resets or `close()`. */
  clientAborted: boolean;
  abortedAt?: number;
}

/** The fields of a behaviour the shared selection reads; every mock's behaviour type has them. */
export interface SelectableBehaviour {
  kind?: string;
  path?: string;
  ms?: number;
  slowFirstByteMs?: number;
}

/** Per-request state. */
export interface Exchange<R extends RecordedExchange> {
  seq: number;
  req: IncomingMessage;
  res: ServerResponse;
  /** Arrival time (0 when recording is off: the benchmark path takes no clock reading). */
  receivedAt: number;
  /** Set once the request is in `requests` (recording on). */
  record: R | undefined;
  /** Aborted when the connection goes away for any reason: stops timers and pending writes. */
  ac: AbortController;
  /** Set before the server itself destroys the connection, so that it is not taken for a client abort. */
  serverClosed: boolean;
}

export interface MockServerOptions<R extends RecordedExchange> {
  /** Prefix of the mock's own error messages, e.g. `mock-upstream`. */
  name: string;
  /** Record requests (default true). */
  record?: boolean;
  /** The 500 answered when the handler throws, in the mock's own error shape. */
  bugResponse(ex: Exchange<R>, message: string): { contentType: string; body: string };
}

interface Waiter {
  check: () => boolean;
  fail: (err: Error) => void;
}

/** The part of a mock its tests use; each mock returns this (plus its own extras). */
export interface MockServerFace<B, R extends RecordedExchange> {
  readonly url: string;
  readonly port: number;
  readonly requests: R[];
  /** TCP connections accepted since start (a pooled client reuses them: fewer than requests). */
  readonly connections: number;
  enqueue(...b: B[]): void;
  setDefault(b: B | undefined): void;
  waitForRequests(n: number, timeoutMs?: number): Promise<R[]>;
  waitForAbort(arg?: number | { requestId?: number; timeoutMs?: number }): Promise<R>;
  reset(): void;
  close(): Promise<void>;
}

export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Resolves true after `ms`, or false as soon as `signal` aborts (0 ms: one turn of the event loop). */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return new Promise((resolve) => setImmediate(() => resolve(!signal.aborted)));
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Resolves once `chunk` was handed to the kernel (or the stream failed): the next write is a separate packet. */
export function flushWrite(res: ServerResponse, chunk: string | Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve();
    res.write(chunk, () => resolve());
  });
}

export function splitBuffer(body: Buffer, offsets: number[]): Buffer[] {
  const cuts = [...new Set(offsets.filter((o) => o > 0 && o < body.length))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const c of cuts) {
    pieces.push(body.subarray(start, c));
    start = c;
  }
  pieces.push(body.subarray(start));
  return pieces;
}

/** Writes pieces one by one, each flushed (and then `gapMs`, or a turn of the event loop) before the next; ends the response. */
export async function writePieces(
  ex: Exchange<RecordedExchange>,
  pieces: Buffer[],
  gapMs: number,
): Promise<void> {
  const { res, ac } = ex;
  for (let i = 0; i < pieces.length; i++) {
    if (i > 0 && !(await sleep(gapMs, ac.signal))) return;
    const piece = pieces[i];
    if (piece === undefined) continue;
    if (i === pieces.length - 1) {
      res.end(piece);
    } else {
      await flushWrite(res, piece);
      if (ac.signal.aborted) return;
    }
  }
}

/** The server a mock composes; `B` is the mock's behaviour type, `R` its recorded request. */
export class MockServer<B extends SelectableBehaviour, R extends RecordedExchange> {
  readonly name: string;
  readonly recordOn: boolean;
  url = '';
  port = 0;
  requests: R[] = [];
  private readonly bugResponse: MockServerOptions<R>['bugResponse'];
  private seq = 0;
  private queue: B[] = [];
  private defaultBehaviour: B | undefined;
  private waiters: Waiter[] = [];
  private closing = false;
  private readonly active = new Set<Exchange<R>>();
  private readonly sockets = new Set<Socket>();
  private accepted = 0;
  private server: http.Server | undefined;

  constructor(options: MockServerOptions<R>) {
    this.name = options.name;
    this.recordOn = options.record !== false;
    this.bugResponse = options.bugResponse;
  }

  /** Starts serving on 127.0.0.1; `handle` answers each request once its body has arrived. */
  async listen(port: number, handle: (ex: Exchange<R>, rawBody: string) => Promise<void>): Promise<void> {
    const server = http.createServer({ noDelay: true, keepAliveTimeout: 10_000 }, (req, res) => {
      const ex: Exchange<R> = {
        seq: ++this.seq,
        req,
        res,
        receivedAt: this.recordOn ? now() : 0,
        record: undefined,
        ac: new AbortController(),
        serverClosed: false,
      };
      this.active.add(ex);
      res.on('finish', () => {
        if (ex.record) ex.record.completedAt = now();
      });
      res.on('close', () => this.onClose(ex));
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (s: string) => {
        raw += s;
      });
      req.on('end', () => {
        handle(ex, raw).catch((err: unknown) => this.failLoudly(ex, err));
      });
    });
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      this.accepted++;
      socket.on('close', () => this.sockets.delete(socket));
    });
    // A client that resets its socket must not crash the test process.
    server.on('clientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.url = `http://127.0.0.1:${this.port}`;
  }

  private onClose(ex: Exchange<R>): void {
    this.active.delete(ex);
    if (!ex.res.writableFinished && !ex.serverClosed && !this.closing) {
      // Aborted while still sending its body: record what we have.
      if (this.recordOn && !ex.record) this.record(ex, undefined, false);
      if (ex.record) {
        ex.record.clientAborted = true;
        ex.record.abortedAt = now();
      }
      this.notify();
    }
    ex.ac.abort();
  }

  /** A bug in the mock must fail loudly, not hang the test: answer 500 with the reason. */
  private failLoudly(ex: Exchange<R>, err: unknown): void {
    const { res } = ex;
    if (!res.headersSent && !res.destroyed) {
      const { contentType, body } = this.bugResponse(ex, err instanceof Error ? err.message : String(err));
      res.writeHead(500, { 'content-type': contentType });
      res.end(body);
    } else {
      this.destroy(ex, false);
    }
  }

  /**
   * Parses the body (JSON; the raw text when it is not JSON; `undefined` when empty) and, with
   * recording on, records the request. Call it first thing in the handler.
   */
  receive(ex: Exchange<R>, raw: string): unknown {
    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    if (this.recordOn) this.record(ex, body, true);
    return body;
  }

  private record(ex: Exchange<R>, body: unknown, notify: boolean): void {
    const { req } = ex;
    ex.record = {
      id: ex.seq,
      method: req.method ?? '',
      path: req.url ?? '/',
      headers: req.headers,
      body,
      behaviour: 'ok',
      receivedAt: ex.receivedAt,
      clientAborted: false,
    } as R;
    this.requests.push(ex.record);
    if (notify) this.notify();
  }

  /**
   * The behaviour for this request: its directive, else the first queued one whose `path` fits
   * (consumed even when a directive wins, so that queue order stays per-request), else the
   * default, else a normal answer. Recorded as the request's `behaviour`.
   */
  behaviourFor(ex: Exchange<R>, directive: B | undefined): B {
    let queued: B | undefined;
    if (this.queue.length > 0) {
      const target = ex.req.url ?? '/';
      const path = target.split('?', 1)[0] ?? target;
      const i = this.queue.findIndex((q) => q.path === undefined || path.endsWith(q.path));
      if (i >= 0) [queued] = this.queue.splice(i, 1);
    }
    const picked = directive ?? queued ?? this.defaultBehaviour;
    const b =
      picked?.kind === 'slowFirstByte' ? { ...picked, slowFirstByteMs: picked.ms } : (picked ?? ({} as B));
    if (ex.record) ex.record.behaviour = b.kind ?? 'ok';
    return b;
  }

  /** The `reset` fault: after any `slowFirstByteMs`, a TCP RST before any response byte. */
  async resetBeforeAnswer(ex: Exchange<R>, slowFirstByteMs: number | undefined): Promise<void> {
    if (slowFirstByteMs && !(await sleep(slowFirstByteMs, ex.ac.signal))) return;
    this.destroy(ex, true);
  }

  /** Where a `redirect` points by default: this server, the path prefixed with `/redirected`. */
  redirectTarget(ex: Exchange<R>): string {
    return `${this.url}/redirected${ex.req.url ?? '/'}`;
  }

  /** Notes that the status line and headers were handed to the socket. */
  markHead(ex: Exchange<R>, status: number): void {
    if (ex.record) {
      ex.record.status = status;
      ex.record.firstByteAt = now();
    }
  }

  /** Ends the connection from the server side (`rst`: with a TCP RST); never counted as a client abort. */
  destroy(ex: Exchange<R>, rst: boolean): void {
    ex.serverClosed = true;
    const socket = ex.req.socket;
    if (rst && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
    else socket.destroy();
  }

  private notify(): void {
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((w) => !w.check());
  }

  private wait<T>(describe: () => string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
    const first = probe();
    if (first !== undefined) return Promise.resolve(first);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = {
        check: () => {
          const v = probe();
          if (v === undefined) return false;
          clearTimeout(timer);
          resolve(v);
          return true;
        },
        fail: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.name}: ${describe()} (after ${timeoutMs} ms)`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  private summary(): string {
    return this.requests.length === 0
      ? 'no requests recorded'
      : this.requests
          .map((r) => `#${r.id} ${r.method} ${r.path}${r.clientAborted ? ' (aborted)' : ''}`)
          .join(', ');
  }

  /** The public face tests use, with the mock's own `extra` fields (e.g. `baseUrl`). */
  face<X extends object>(extra: X): MockServerFace<B, R> & X {
    const self = this;
    const face: MockServerFace<B, R> = {
      url: this.url,
      port: this.port,
      get requests() {
        return self.requests;
      },
      get connections() {
        return self.accepted;
      },
      enqueue(...b: B[]) {
        self.queue.push(...b);
      },
      setDefault(b: B | undefined) {
        self.defaultBehaviour = b;
      },
      waitForRequests(n: number, timeoutMs = DEFAULT_WAIT_MS) {
        if (!self.recordOn)
          return Promise.reject(new Error(`${self.name}: waitForRequests needs recording on`));
        return self.wait(
          () => `expected ${n} request(s), got ${self.requests.length}: ${self.summary()}`,
          timeoutMs,
          () => (self.requests.length >= n ? self.requests.slice() : undefined),
        );
      },
      waitForAbort(arg?: number | { requestId?: number; timeoutMs?: number }) {
        const opts = typeof arg === 'number' ? { timeoutMs: arg } : (arg ?? {});
        const { requestId } = opts;
        if (!self.recordOn) return Promise.reject(new Error(`${self.name}: waitForAbort needs recording on`));
        return self.wait(
          () =>
            `no client abort${requestId === undefined ? '' : ` of request #${requestId}`}; recorded: ${self.summary()}`,
          opts.timeoutMs ?? DEFAULT_WAIT_MS,
          () => self.requests.find((r) => r.clientAborted && (requestId === undefined || r.id === requestId)),
        );
      },
      reset() {
        self.requests = [];
        self.queue = [];
        self.defaultBehaviour = undefined;
      },
      close: () => this.close(),
    };
    return Object.assign(face, extra);
  }

  /** Destroys every open connection (hung ones included), fails pending waiters and stops the server. */
  async close(): Promise<void> {
    this.closing = true;
    for (const w of this.waiters) w.fail(new Error(`${this.name}: closed while waiting`));
    this.waiters = [];
    for (const ex of this.active) {
      ex.serverClosed = true;
      ex.ac.abort();
    }
    const server = this.server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}
