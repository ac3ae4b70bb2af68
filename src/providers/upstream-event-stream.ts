/**
 * An upstream's event stream, read push-style: undici's HTTP parser hands
 * each body chunk straight to this handler, which frames the SSE events in
 * it and turns them into items (the adapter's `EventReader`) in the same
 * call, queued for the one consumer, who pulls them as an async iterator.
 *
 * Why not `request()` and an async generator over its body: every chunk then
 * went through undici's Readable body, Node's async iterator over it (an
 * async generator), our transport-error generator and the adapter's
 * generator, each with its own promises, iterator results and ticks: about a
 * third of the ~215 KB a 24-chunk stream allocated, and the CPU to make and
 * collect it, on the path of every chunk. Here a chunk costs the parsing,
 * one queue slot and, when the consumer is waiting, one resolved promise.
 *
 * Semantics kept from that path: the attempt's signal and the total deadline
 * abort the call; undici's `headersTimeout`/`bodyTimeout` bound the first
 * byte and the gaps; a non-2xx answer, or a 2xx that is not an event stream,
 * is read (bounded) and thrown as the adapter maps it; transport errors are
 * mapped (a client abort stays one); items read before a failure are still
 * delivered, then the failure; a consumer that stops early (`return`)
 * releases the socket. Backpressure: past `HIGH_WATER` queued items the
 * parser is paused until the consumer has taken them all.
 */
import { createRequire } from 'node:module';
import type { Dispatcher } from 'undici';
import { GatewayError } from '../core/errors.ts';
import { type SseEvent, SseParser } from './sse.ts';
import { MAX_UPSTREAM_BODY_BYTES, mapTransportError, type UpstreamErrorMapper } from './transport-error.ts';
import type { AttemptContext } from './types.ts';

const parseHeaders = (createRequire(import.meta.url)('undici/lib/core/util.js') as UndiciUtil).parseHeaders;
interface UndiciUtil {
  parseHeaders(raw: Buffer[]): Record<string, string | string[] | undefined>;
}

/** An adapter's reading of its upstream's events. */
export interface EventReader<T> {
  /** Appends the items `event` carries to `out`; throws (a GatewayError) for an error event or a bad frame. */
  read(event: SseEvent, out: T[]): void;
  /** The body ended: appends what is left; throws when the stream ended before it was complete. */
  end(out: T[]): void;
}

/** The items of a byte stream (split anywhere) as `reader` reads them: the pull form, for sources other than an upstream call. */
export async function* readEventItems<T>(
  body: AsyncIterable<Uint8Array>,
  reader: EventReader<T>,
): AsyncGenerator<T> {
  const parser = new SseParser();
  const items: T[] = [];
  for await (const bytes of body) {
    for (const event of parser.push(bytes)) reader.read(event, items);
    yield* items;
    items.length = 0;
  }
  for (const event of parser.end()) reader.read(event, items);
  reader.end(items);
  yield* items;
}

/** Items queued past this pause the upstream until the consumer has caught up. */
const HIGH_WATER = 64;

/** Where a call is. */
const Phase = {
  /** Request sent, no response yet. */
  Waiting: 0,
  /** An error answer: its body is being read for the message. */
  Refused: 1,
  /** An event stream: items flow. */
  Streaming: 2,
  /** Ended, failed or released: nothing more will be queued. */
  Over: 3,
} as const;
type Phase = (typeof Phase)[keyof typeof Phase];

export interface EventStreamRequest {
  path: string;
  headers: Record<string, string>;
  body: string;
  ctx: AttemptContext;
}

/**
 * POSTs `req` through `dispatcher` and resolves once the upstream answered
 * with a 2xx event stream; rejects with the mapped error otherwise.
 */
export function openEventStream<T>(
  dispatcher: Dispatcher,
  req: EventStreamRequest,
  reader: EventReader<T>,
  mapError: UpstreamErrorMapper,
): Promise<AsyncIterableIterator<T>> {
  req.ctx.signal.throwIfAborted();
  const stream = new UpstreamEventStream(req.ctx, reader, mapError);
  dispatcher.dispatch(
    {
      method: 'POST',
      path: req.path,
      headers: req.headers,
      body: req.body,
      headersTimeout: req.ctx.timeouts.firstByteMs,
      bodyTimeout: req.ctx.timeouts.idleMs,
    },
    stream,
  );
  return stream.opened;
}

class UpstreamEventStream<T> implements AsyncIterableIterator<T>, Dispatcher.DispatchHandler {
  readonly opened: Promise<AsyncIterableIterator<T>>;
  readonly #signal: AbortSignal;
  readonly #reader: EventReader<T>;
  readonly #mapError: UpstreamErrorMapper;
  readonly #timer: NodeJS.Timeout;
  #phase: Phase = Phase.Waiting;
  #settleOpen!: { resolve(value: AsyncIterableIterator<T>): void; reject(error: unknown): void };
  /** undici's abort for this request, once it is on a connection. */
  #abort: ((reason: Error) => void) | undefined;
  /** Why the call was aborted before it reached a connection. */
  #abortReason: Error | undefined;
  #resume: (() => void) | undefined;
  #paused = false;

  #parser: SseParser | undefined;
  #queue: T[] = [];
  #head = 0;
  /** What the consumer gets once the queue is empty: the end, or a failure. */
  #failure: unknown;
  #waiting: { resolve(result: IteratorResult<T>): void; reject(error: unknown): void } | undefined;

  /** An error answer being read: status, headers and the body so far. */
  #refusal:
    | {
        status: number;
        headers: Record<string, string | string[] | undefined>;
        chunks: Buffer[];
        size: number;
      }
    | undefined;

  constructor(ctx: AttemptContext, reader: EventReader<T>, mapError: UpstreamErrorMapper) {
    this.#signal = ctx.signal;
    this.#reader = reader;
    this.#mapError = mapError;
    this.opened = new Promise((resolve, reject) => {
      this.#settleOpen = { resolve, reject };
    });
    ctx.signal.addEventListener('abort', this);
    this.#timer = setTimeout(expire, ctx.timeouts.totalMs, this);
  }

  // ---- aborts: the attempt's signal (an EventListener object, no closure), the deadline, the consumer

  handleEvent(): void {
    this.abortCall(this.#signal.reason as Error);
  }

  abortCall(reason: Error): void {
    if (this.#abort) this.#abort(reason);
    else this.#abortReason ??= reason;
  }

  // ---- undici's dispatch handler

  onConnect(abort: (reason: Error) => void): void {
    if (this.#abortReason !== undefined) {
      abort(this.#abortReason);
      return;
    }
    this.#abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    this.#resume = resume;
    const headers = parseHeaders(rawHeaders);
    if (statusCode < 200 || statusCode >= 300) {
      this.#refusal = { status: statusCode, headers, chunks: [], size: 0 };
    } else if (!String(headers['content-type'] ?? '').includes('text/event-stream')) {
      // Some servers answer a stream request with a plain JSON error under 200: mapped as a 502.
      this.#refusal = { status: 502, headers, chunks: [], size: 0 };
    }
    if (this.#refusal !== undefined) {
      this.#phase = Phase.Refused;
      return true;
    }
    this.#phase = Phase.Streaming;
    this.#parser = new SseParser();
    this.#settleOpen.resolve(this);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#phase === Phase.Refused) return this.#collect(chunk);
    if (this.#phase !== Phase.Streaming) return true;
    const queue = this.#queue;
    // A bad frame or an error event throws: undici aborts the request and calls onError with it,
    // after the items read before it, which stay queued.
    for (const event of this.#parser!.push(chunk)) this.#reader.read(event, queue);
    this.#deliver();
    if (queue.length - this.#head > HIGH_WATER) {
      this.#paused = true;
      return false;
    }
    return true;
  }

  onComplete(): void {
    if (this.#phase === Phase.Refused) {
      const refusal = this.#refusal!;
      this.#finish();
      this.#settleOpen.reject(
        this.#mapError(refusal.status, refusal.headers, Buffer.concat(refusal.chunks).toString('utf8')),
      );
      return;
    }
    if (this.#phase !== Phase.Streaming) return;
    try {
      for (const event of this.#parser!.end()) this.#reader.read(event, this.#queue);
      this.#reader.end(this.#queue);
    } catch (error) {
      this.#failure = error;
    }
    this.#finish();
    this.#deliver();
  }

  onError(error: Error): void {
    const phase = this.#phase;
    if (phase === Phase.Over) return;
    this.#finish();
    const mapped = mapTransportError(error, this.#signal);
    if (phase === Phase.Streaming) {
      this.#failure = mapped;
      this.#deliver();
    } else {
      this.#settleOpen.reject(mapped);
    }
  }

  /** Reads an error answer's body, bounded: past the bound it is cut and the error mapped from what came. */
  #collect(chunk: Buffer): boolean {
    const refusal = this.#refusal!;
    refusal.size += chunk.length;
    if (refusal.size <= MAX_UPSTREAM_BODY_BYTES) refusal.chunks.push(chunk);
    return true;
  }

  /** Nothing more will be queued: timers and listeners released. */
  #finish(): void {
    this.#phase = Phase.Over;
    clearTimeout(this.#timer);
    this.#signal.removeEventListener('abort', this);
  }

  /** Hands the consumer waiting for an item its item, or the end. */
  #deliver(): void {
    const waiting = this.#waiting;
    if (waiting === undefined) return;
    if (this.#head < this.#queue.length) {
      this.#waiting = undefined;
      waiting.resolve({ value: this.#take(), done: false });
    } else if (this.#phase === Phase.Over) {
      this.#waiting = undefined;
      this.#settleEnd(waiting);
    }
  }

  #take(): T {
    const queue = this.#queue;
    const value = queue[this.#head]!;
    queue[this.#head++] = undefined as T;
    if (this.#head === queue.length) {
      queue.length = 0;
      this.#head = 0;
      if (this.#paused) {
        this.#paused = false;
        this.#resume?.();
      }
    }
    return value;
  }

  #settleEnd(waiting: { resolve(result: IteratorResult<T>): void; reject(error: unknown): void }): void {
    const failure = this.#failure;
    if (failure === undefined) {
      waiting.resolve({ value: undefined, done: true });
    } else {
      this.#failure = undefined;
      waiting.reject(failure);
    }
  }

  // ---- the consumer's side

  next(): Promise<IteratorResult<T>> {
    if (this.#head < this.#queue.length) return Promise.resolve({ value: this.#take(), done: false });
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      if (this.#phase === Phase.Over) this.#deliver();
    });
  }

  /** The consumer stopped early: the upstream call is aborted (its socket released) and nothing more is read. */
  return(): Promise<IteratorResult<T>> {
    if (this.#phase !== Phase.Over) {
      this.#finish();
      this.abortCall(new GatewayError('upstream_error', 'Upstream stream abandoned by its reader'));
    }
    this.#queue.length = 0;
    this.#head = 0;
    this.#failure = undefined;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

function expire(stream: UpstreamEventStream<unknown>): void {
  stream.abortCall(new GatewayError('upstream_timeout', 'Upstream total timeout exceeded'));
}
