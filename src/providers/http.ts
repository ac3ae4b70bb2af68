/**
 * Pooled upstream HTTP with the three timeouts, shared by every HTTP adapter.
 *
 * - connect: the pool's connector timeout;
 * - first byte (request sent → response headers), idle (longest silence
 *   while reading) and total (the whole attempt, body included): the call's
 *   own one timer (upstream-call.ts), not undici's timeouts.
 *
 * Every call is read push-style, its answer handed to our own handler as
 * undici parses it (upstream-call.ts): a whole JSON answer, an event stream,
 * or a readiness probe. Redirects are never followed (a dispatch does not
 * follow them, and a 3xx is an error answer): a redirect must not be able to
 * carry our provider credentials to another host.
 */

import { createRequire } from 'node:module';
import type { Pool as PoolType } from 'undici';
import { MAX_UPSTREAM_BODY_BYTES, mapTransportError, type UpstreamErrorMapper } from './transport-error.ts';
import type { AttemptContext, ProbeOptions } from './types.ts';
import type { UpstreamPost } from './upstream-call.ts';
import { type EventReader, openEventStream, type RelayableStream } from './upstream-event-stream.ts';
import { type JsonAnswerValue, postForJson } from './upstream-json-answer.ts';
import { runProbe } from './upstream-probe.ts';

export { MAX_UPSTREAM_BODY_BYTES, mapTransportError, type UpstreamErrorMapper };

// Only the connection pool, not undici's index: that also loads fetch, the
// WebSocket and cache layers and the mock agent, ~3 MB of heap and ~4 MB of
// RSS in every gateway process that never uses them. Calls go through the
// pool's own `dispatch`, so not even undici's request API is needed here.
const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof PoolType;
type Pool = PoolType;

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
  probe(
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal,
    mapError: UpstreamErrorMapper,
    failFrom: number,
    options: ProbeOptions = {},
  ): Promise<void> {
    const ctx = healthCheckContext(signal, options.connectMs);
    return runProbe(
      this.#pool(ctx.timeouts.connectMs),
      { path: this.#basePath + path, headers, ctx },
      failFrom,
      mapError,
    );
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
  ): Promise<RelayableStream<T>> {
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

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.close()));
    this.#pools.clear();
  }
}

/** The provider's headers plus our request id, so an upstream's logs can be matched with ours. */
export function withRequestId(headers: Record<string, string>, ctx: AttemptContext): Record<string, string> {
  return { ...headers, 'x-request-id': ctx.requestId };
}

/** The attempt context of a readiness probe: short timeouts, no client behind it. */
function healthCheckContext(signal: AbortSignal, connectMs = 2_000): AttemptContext {
  return {
    signal,
    requestId: 'health-check',
    timeouts: { connectMs, firstByteMs: 5_000, totalMs: 5_000, idleMs: 5_000 },
  };
}
