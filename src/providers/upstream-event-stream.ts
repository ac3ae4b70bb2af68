/**
 * An upstream's event stream, read push-style (upstream-call.ts): each body
 * chunk is framed into SSE events and turned into items by the adapter's
 * `EventReader` in the call that delivers it, queued for the one consumer,
 * who pulls them as an async iterator.
 *
 * A 2xx answer that is not an event stream is refused as a 502 (some servers
 * answer a stream request with a plain JSON error under 200). Items read
 * before a failure (a bad frame, an error event, a cut connection, the
 * deadline) are delivered first, then the failure. A consumer that stops
 * early (`return`) aborts the call, releasing its socket. Backpressure: past
 * `HIGH_WATER` queued items the parser is paused until the consumer has
 * taken them all.
 */
import type { Dispatcher } from 'undici';
import { GatewayError } from '../core/errors.ts';
import { type SseEvent, SseParser } from './sse.ts';
import type { UpstreamErrorMapper } from './transport-error.ts';
import { dispatchCall, type ResponseHeaders, UpstreamCall, type UpstreamPost } from './upstream-call.ts';

/** An adapter's reading of its upstream's events. */
export interface EventReader<T> {
  /** Appends the items `event` carries to `out`; throws (a GatewayError) for an error event or a bad frame. */
  read(event: SseEvent, out: T[]): void;
  /** The body ended: appends what is left; throws when the stream ended before it was complete. */
  end(out: T[]): void;
}

/**
 * The items of a byte stream (split anywhere) as `reader` reads them: the pull
 * form, for sources other than an upstream call. As the push form does, items
 * read before a failure are yielded before it is thrown.
 */
export async function* readEventItems<T>(
  body: AsyncIterable<Uint8Array>,
  reader: EventReader<T>,
): AsyncGenerator<T> {
  const parser = new SseParser();
  const items: T[] = [];
  try {
    for await (const bytes of body) {
      for (const event of parser.push(bytes)) reader.read(event, items);
      yield* items.splice(0);
    }
    for (const event of parser.end()) reader.read(event, items);
    reader.end(items);
  } catch (error) {
    yield* items.splice(0);
    throw error;
  }
  yield* items;
}

/** Items queued past this pause the upstream until the consumer has caught up. */
const HIGH_WATER = 64;

/**
 * POSTs through `dispatcher` and resolves once the upstream answered with a
 * 2xx event stream, whose items `reader` makes; rejects with the mapped error otherwise.
 */
export function openEventStream<T>(
  dispatcher: Dispatcher,
  post: UpstreamPost,
  reader: EventReader<T>,
  mapError: UpstreamErrorMapper,
): Promise<AsyncIterableIterator<T>> {
  const stream = new UpstreamEventStream(post, reader, mapError);
  dispatchCall(dispatcher, post, stream);
  return stream.opened;
}

interface Waiting<T> {
  resolve(result: IteratorResult<T>): void;
  reject(error: unknown): void;
}

class UpstreamEventStream<T> extends UpstreamCall implements AsyncIterableIterator<T> {
  readonly #settleOpen = Promise.withResolvers<AsyncIterableIterator<T>>();
  readonly opened = this.#settleOpen.promise;
  readonly #reader: EventReader<T>;
  #paused = false;
  /** Made once the answer is accepted as an event stream. */
  #parser: SseParser | undefined;
  #queue: T[] = [];
  #head = 0;
  /** What the consumer gets once the queue is empty and the call is over: undefined is the end. */
  #failure: unknown;
  #waiting: Waiting<T> | undefined;

  constructor(post: UpstreamPost, reader: EventReader<T>, mapError: UpstreamErrorMapper) {
    super(post.ctx, mapError);
    this.#reader = reader;
  }

  // ---- the answer, as undici's parser delivers it

  protected refusalStatus(statusCode: number, headers: ResponseHeaders): number | undefined {
    if (statusCode < 200 || statusCode >= 300) return statusCode;
    return String(headers['content-type'] ?? '').includes('text/event-stream') ? undefined : 502;
  }

  protected accepted(): void {
    this.#parser = new SseParser();
    this.#settleOpen.resolve(this);
  }

  protected body(chunk: Buffer): boolean {
    const queue = this.#queue;
    // A bad frame or an error event throws: undici aborts the request and calls onError with it,
    // after the items read before it, which stay queued.
    for (const event of this.#parser!.push(chunk)) this.#reader.read(event, queue);
    this.#deliver();
    if (queue.length - this.#head <= HIGH_WATER) return true;
    this.#paused = true;
    return false;
  }

  protected ended(): void {
    try {
      for (const event of this.#parser!.end()) this.#reader.read(event, this.#queue);
      this.#reader.end(this.#queue);
    } catch (error) {
      this.#failure = error;
    }
    this.finish();
    this.#deliver();
  }

  protected failed(error: unknown): void {
    if (this.#parser === undefined) {
      this.#settleOpen.reject(error);
      return;
    }
    this.#failure = error;
    this.#deliver();
  }

  /** Hands the consumer waiting for an item its item, or the end. */
  #deliver(): void {
    const waiting = this.#waiting;
    if (waiting === undefined) return;
    if (this.#head < this.#queue.length) {
      this.#waiting = undefined;
      waiting.resolve({ value: this.#take(), done: false });
    } else if (this.over) {
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
        this.resume?.();
      }
    }
    return value;
  }

  #settleEnd(waiting: Waiting<T>): void {
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
      if (this.over) this.#deliver();
    });
  }

  /** The consumer stopped early: the call is aborted (its socket released) and nothing more is read. */
  return(): Promise<IteratorResult<T>> {
    if (!this.over) {
      this.finish();
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
