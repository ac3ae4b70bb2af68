/**
 * Pooled upstream HTTP with the three timeouts, shared by every HTTP adapter.
 *
 * - connect: the pool's connector timeout;
 * - first byte: undici's `headersTimeout` (request sent → response headers);
 * - idle: undici's `bodyTimeout` (longest gap between body chunks);
 * - total: our own timer over the whole attempt, body included.
 *
 * Redirects are never followed (undici's `request` does not follow them, and a
 * 3xx is reported as a bad upstream response): a redirect must not be able to
 * carry our provider credentials to another host.
 */

import { createRequire } from 'node:module';
import type { Dispatcher, Pool as PoolType } from 'undici';
import { GatewayError } from '../core/errors.ts';
import { MAX_UPSTREAM_BODY_BYTES, mapTransportError, type UpstreamErrorMapper } from './transport-error.ts';
import type { AttemptContext, ProbeOptions } from './types.ts';
import type { UpstreamPost } from './upstream-call.ts';
import { type EventReader, openEventStream } from './upstream-event-stream.ts';
import { type JsonAnswerValue, postForJson } from './upstream-json-answer.ts';

export { MAX_UPSTREAM_BODY_BYTES, mapTransportError, type UpstreamErrorMapper };

// Only the connection pool and its request API, not undici's index: that also
// loads fetch, the WebSocket and cache layers and the mock agent, ~3 MB of heap
// and ~4 MB of RSS in every gateway process that never uses them.
const requireUndici = createRequire(import.meta.url);
const Pool = requireUndici('undici/lib/dispatcher/pool.js') as typeof PoolType;
type Pool = PoolType;
// As undici's index does: request() and the rest of the API on every dispatcher.
Object.assign(
  (requireUndici('undici/lib/dispatcher/dispatcher.js') as { prototype: object }).prototype,
  requireUndici('undici/lib/api/index.js'),
);

export interface UpstreamResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  /** Stops the total-deadline timer; call when the body is fully consumed or abandoned. */
  done(): void;
}

export interface UpstreamRequest {
  method: 'GET' | 'POST';
  /** Path and query, appended to the base URL's path. */
  path: string;
  headers: Record<string, string>;
  body?: string;
  ctx: AttemptContext;
}

export class UpstreamClient {
  readonly #origin: string;
  readonly #basePath: string;
  readonly #maxConnections: number;
  /** One pool per connect timeout in use (normally one). */
  readonly #pools = new Map<number, Pool>();

  constructor(baseUrl: string, options: { maxConnections?: number } = {}) {
    const url = new URL(baseUrl);
    this.#origin = url.origin;
    this.#basePath = url.pathname.replace(/\/+$/, '');
    this.#maxConnections = options.maxConnections ?? 256;
  }

  get origin(): string {
    return this.#origin;
  }

  /**
   * A readiness probe (a GET that spends no tokens): the body is drained, and a
   * status at or above `failFrom` is thrown as the adapter maps it.
   */
  async probe(
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal,
    mapError: UpstreamErrorMapper,
    failFrom: number,
    options: ProbeOptions = {},
  ): Promise<void> {
    const res = await this.request({
      method: 'GET',
      path,
      headers,
      ctx: healthCheckContext(signal, options.connectMs),
    });
    const text = await readText(res, signal);
    if (res.statusCode >= failFrom) throw mapError(res.statusCode, res.headers, text);
  }

  /** POSTs a JSON body; a non-2xx answer is read (bounded) and thrown as the adapter maps it. */
  async postJson(
    path: string,
    headers: Record<string, string>,
    body: unknown,
    ctx: AttemptContext,
    mapError: UpstreamErrorMapper,
  ): Promise<UpstreamResponse> {
    const res = await this.request({ method: 'POST', path, headers, body: JSON.stringify(body), ctx });
    return expectOk(res, ctx.signal, mapError);
  }

  /**
   * POSTs a JSON body that asks for an event stream, read push-style into
   * `reader`'s items (upstream-event-stream.ts): resolves once the upstream
   * answered with a 2xx event stream, else rejects with the mapped error.
   */
  postEventStream<T>(
    path: string,
    headers: Record<string, string>,
    body: unknown,
    ctx: AttemptContext,
    reader: EventReader<T>,
    mapError: UpstreamErrorMapper,
  ): Promise<AsyncIterableIterator<T>> {
    return openEventStream(
      this.#pool(ctx.timeouts.connectMs),
      this.#post(path, headers, body, ctx),
      reader,
      mapError,
    );
  }

  /**
   * POSTs a JSON body and reads the whole JSON answer push-style
   * (upstream-json-answer.ts): resolves with the parsed 2xx body and its headers, else
   * rejects with the mapped error (or a bad response for a body that is not JSON).
   */
  postForJson(
    path: string,
    headers: Record<string, string>,
    body: unknown,
    ctx: AttemptContext,
    mapError: UpstreamErrorMapper,
  ): Promise<JsonAnswerValue> {
    return postForJson(this.#pool(ctx.timeouts.connectMs), this.#post(path, headers, body, ctx), mapError);
  }

  #post(path: string, headers: Record<string, string>, body: unknown, ctx: AttemptContext): UpstreamPost {
    const trace = ctx.traceHeaders;
    return {
      path: this.#basePath + path,
      headers: trace === undefined ? headers : { ...headers, ...trace },
      body: JSON.stringify(body),
      ctx,
    };
  }

  #pool(connectMs: number): Pool {
    let pool = this.#pools.get(connectMs);
    if (!pool) {
      pool = new Pool(this.#origin, {
        connections: this.#maxConnections,
        connect: { timeout: connectMs },
        keepAliveTimeout: 30_000,
        pipelining: 1,
      });
      this.#pools.set(connectMs, pool);
    }
    return pool;
  }

  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const { ctx } = req;
    ctx.signal.throwIfAborted();
    const call = new UpstreamCall(ctx.signal, ctx.timeouts.totalMs);
    try {
      const trace = ctx.traceHeaders;
      const res = await this.#pool(ctx.timeouts.connectMs).request({
        method: req.method,
        path: this.#basePath + req.path,
        headers: trace === undefined ? req.headers : { ...req.headers, ...trace },
        body: req.body ?? null,
        signal: call.signal,
        headersTimeout: ctx.timeouts.firstByteMs,
        bodyTimeout: ctx.timeouts.idleMs,
      });
      call.statusCode = res.statusCode;
      call.headers = res.headers;
      call.body = res.body;
      return call;
    } catch (error) {
      call.done();
      throw mapTransportError(error, ctx.signal);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.close()));
    this.#pools.clear();
  }
}

/**
 * One upstream call, and what aborts it: the attempt's signal (client gone,
 * hedge lost) or the total deadline, whichever comes first. One controller
 * that listens to the attempt's signal, where `AbortSignal.any` would build a
 * composite signal (weak references, a finalization registry) per call.
 */
class UpstreamCall implements UpstreamResponse {
  statusCode = 0;
  headers: Record<string, string | string[] | undefined> = {};
  body!: Dispatcher.ResponseData['body'];
  readonly #controller = new AbortController();
  readonly #parent: AbortSignal;
  readonly #timer: NodeJS.Timeout;

  constructor(parent: AbortSignal, totalMs: number) {
    this.#parent = parent;
    parent.addEventListener('abort', this);
    this.#timer = setTimeout(expire, totalMs, this.#controller);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The attempt's signal fired (an EventListener object: no closure per call). */
  handleEvent(): void {
    this.#controller.abort(this.#parent.reason);
  }

  done(): void {
    clearTimeout(this.#timer);
    this.#parent.removeEventListener('abort', this);
  }
}

function expire(controller: AbortController): void {
  controller.abort(new GatewayError('upstream_timeout', 'Upstream total timeout exceeded'));
}

/** The provider's headers plus our request id, so an upstream's logs can be matched with ours. */
export function withRequestId(headers: Record<string, string>, ctx: AttemptContext): Record<string, string> {
  return { ...headers, 'x-request-id': ctx.requestId };
}

/** Reads a whole (bounded) body as text; transport errors mapped. */
export async function readText(res: UpstreamResponse, clientSignal: AbortSignal): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_UPSTREAM_BODY_BYTES) {
        res.body.destroy();
        throw new GatewayError('upstream_bad_response', 'Upstream response too large');
      }
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    throw mapTransportError(error, clientSignal);
  } finally {
    res.done();
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Passes a 2xx response on; anything else is read (bounded) and thrown as the adapter maps it. */
async function expectOk(
  res: UpstreamResponse,
  clientSignal: AbortSignal,
  mapError: UpstreamErrorMapper,
): Promise<UpstreamResponse> {
  if (res.statusCode >= 200 && res.statusCode < 300) return res;
  const text = await readText(res, clientSignal).catch(() => '');
  throw mapError(res.statusCode, res.headers, text);
}

/**
 * A 2xx answer to a stream request must be an event stream: some servers answer
 * one with a plain JSON error under 200, which is read and mapped as a 502.
 */
export async function expectEventStream(
  res: UpstreamResponse,
  clientSignal: AbortSignal,
  mapError: UpstreamErrorMapper,
): Promise<UpstreamResponse> {
  if (String(res.headers['content-type'] ?? '').includes('text/event-stream')) return res;
  const text = await readText(res, clientSignal);
  throw mapError(502, res.headers, text);
}

/** The attempt context of a readiness probe: short timeouts, no client behind it. */
function healthCheckContext(signal: AbortSignal, connectMs = 2_000): AttemptContext {
  return {
    signal,
    requestId: 'health-check',
    timeouts: { connectMs, firstByteMs: 5_000, totalMs: 5_000, idleMs: 5_000 },
  };
}

/**
 * What `parse` (a provider's stream parser, bytes → items) yields from an
 * upstream response body, with transport errors mapped (a client abort stays
 * one) and the socket released however the stream ends: finished, failed, or
 * abandoned by its reader.
 */
export async function* readUpstream<T>(
  res: UpstreamResponse,
  clientSignal: AbortSignal,
  parse: (body: AsyncIterable<Uint8Array>) => AsyncIterable<T>,
): AsyncGenerator<T> {
  try {
    yield* parse(res.body as AsyncIterable<Uint8Array>);
  } catch (error) {
    throw mapTransportError(error, clientSignal);
  } finally {
    res.done();
    if (!res.body.destroyed) res.body.destroy();
  }
}
