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
 *
 * A relay takes the items push-style instead (`relay`): each is handed to its
 * sink in the call that read it, with no promise, iterator result or tick per
 * item, which pulling one at a time costs.
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
): Promise<RelayableStream<T>> {
  const stream = new UpstreamEventStream(post, reader, mapError);
  dispatchCall(dispatcher, post, stream);
  return stream.opened;
}

/**
 * Where `relay` hands each item: true once written, false when the consumer
 * is gone (nothing more is handed over), or a promise of either while a write
 * waits for the consumer to drain (the items after it wait too).
 */
export type ItemSink<T> = (item: T) => boolean | Promise<boolean>;

/** How a relay ended: the stream's failure (undefined when it ended whole), or `stopped` by its sink. */
export interface RelayEnd {
  failure: unknown;
  stopped: boolean;
}

/** An item stream that can also be relayed push-style (what `openEventStream` gives). */
export interface RelayableStream<T> extends AsyncIterableIterator<T> {
  relay(sink: ItemSink<T>): Promise<RelayEnd>;
}

interface Waiting<T> {
  resolve(result: IteratorResult<T>): void;
  reject(error: unknown): void;
}

class UpstreamEventStream<T> extends UpstreamCall implements RelayableStream<T> {
  readonly #settleOpen = Promise.withResolvers<RelayableStream<T>>();
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
  /** The relay's sink, while one runs; `#relayed` settles when it ends. */
  #sink: ItemSink<T> | undefined;
  #relayed: PromiseWithResolvers<RelayEnd> | undefined;
  /** A write of the sink waits for drain: items wait for it. */
  #sinkBusy = false;
  /** Items are being handed to the sink: a call back into `#deliver` (the parser resumed by `#take`) leaves them to it, in order. */
  #pushing = false;

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

  /** Hands the consumer waiting for an item its item, or the end; or the relay's sink all it can take. */
  #deliver(): void {
    if (this.#sink !== undefined) {
      this.#push(this.#sink);
      return;
    }
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

  #push(sink: ItemSink<T>): void {
    if (this.#sinkBusy || this.#pushing) return;
    this.#pushing = true;
    try {
      while (this.#head < this.#queue.length) {
        let sent: boolean | Promise<boolean>;
        try {
          sent = sink(this.#take());
        } catch (error) {
          this.#endRelay({ failure: error, stopped: false });
          return;
        }
        if (sent === true) continue;
        if (sent === false) {
          this.#endRelay({ failure: undefined, stopped: true });
          return;
        }
        this.#sinkBusy = true;
        sent.then(
          (ok) => this.#drained(sink, ok),
          (error: unknown) => {
            this.#sinkBusy = false;
            this.#endRelay({ failure: error, stopped: false });
          },
        );
        return;
      }
    } finally {
      this.#pushing = false;
    }
    if (this.over) this.#endRelay({ failure: this.#failure, stopped: false });
  }

  #drained(sink: ItemSink<T>, ok: boolean): void {
    this.#sinkBusy = false;
    if (this.#sink !== sink) return;
    if (ok) this.#push(sink);
    else this.#endRelay({ failure: undefined, stopped: true });
  }

  /**
   * The relay is over. Ended by the stream (whole or failed), its failure is
   * handed over; stopped by the sink (false, a throw, a rejection), the call
   * is aborted if still running, as `return` would.
   */
  #endRelay(end: RelayEnd): void {
    const relayed = this.#relayed;
    this.#sink = undefined;
    this.#relayed = undefined;
    if (end.stopped || end.failure !== this.#failure) void this.return();
    else this.#failure = undefined;
    relayed?.resolve(end);
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
        this.resumeReading();
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

  /**
   * Hands every item from now on (those already read first) to `sink` as the
   * parser reads them; resolves once the stream is over (its failure, if it
   * failed, after the items read before it) or the sink said false. Instead
   * of `next`, not beside it.
   */
  relay(sink: ItemSink<T>): Promise<RelayEnd> {
    this.#relayed = Promise.withResolvers<RelayEnd>();
    this.#sink = sink;
    const ended = this.#relayed.promise;
    this.#deliver();
    return ended;
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
