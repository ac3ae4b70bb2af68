/**
 * Micro-batching: items submitted one at a time reach `run` together, in
 * batches of at most `maxBatch`, each sent when it is full or `maxWaitMs`
 * after its first item, whichever comes first; every caller gets the result
 * at its own position. The seed's `RequestBatcher`, with what a gateway needs
 * around it:
 *
 * - errors are isolated: `run` throwing fails every caller of that batch (and
 *   a result count that does not match fails them all, since no caller's
 *   position can be trusted), but `run` may answer an `Error` in one position
 *   to fail that caller alone;
 * - bounded: a batch never exceeds `maxBatch`, and at most `maxInFlight`
 *   batches run at once. Batches beyond that wait in order, and the one still
 *   open keeps filling while it waits, so a backlog makes batches fuller, not
 *   more numerous;
 * - a caller whose AbortSignal fires is rejected at once with the signal's
 *   reason; if its batch has not left yet it is taken out of it (an emptied
 *   batch is never sent). Once a batch has left, its `run` is told through its
 *   own signal only when every caller of it has gone: the others still want
 *   their answers;
 * - `flush()` sends whatever waits at once (a draining gateway's requests
 *   should not wait for company); `close()` does too, resolves when every
 *   batch has finished, and refuses later submissions.
 *
 * Timers come from `timer` (default: setTimeout), so tests drive time
 * themselves instead of sleeping.
 */

/** Schedules the flush of a batch that is not full. */
export interface BatchTimer {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface BatcherOptions<I, O> {
  /**
   * Handles one batch: answers one result per item, in the items' order; an
   * `Error` in a position fails that item's caller alone. `signal` aborts when
   * every caller of the batch has gone.
   */
  run: (items: I[], signal: AbortSignal) => Promise<ReadonlyArray<O | Error>>;
  /** Most items per batch (default 100). */
  maxBatch?: number;
  /** Longest a batch waits for more items after its first one, in ms (default 10). */
  maxWaitMs?: number;
  /** Most batches running at once (default 8); the rest wait their turn. */
  maxInFlight?: number;
  timer?: BatchTimer;
}

export const DEFAULT_MAX_BATCH = 100;
export const DEFAULT_MAX_WAIT_MS = 10;
export const DEFAULT_MAX_IN_FLIGHT = 8;

const SYSTEM_TIMER: BatchTimer = {
  set: (callback, ms) => setTimeout(callback, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

interface Entry<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  batch: Batch<I, O>;
  /** Answered or rejected: nothing more may happen to its promise. */
  done: boolean;
}

interface Batch<I, O> {
  entries: Entry<I, O>[];
  /** Its wait is over: it leaves at the next free slot (a sealed batch needs no wait). */
  due: boolean;
  timer: unknown;
  /** Set when it leaves: aborted once none of its callers wants the answer. */
  controller: AbortController | undefined;
  /** Callers of a batch that has left who have not gone. */
  wanted: number;
}

export class Batcher<I, O> {
  readonly #run: BatcherOptions<I, O>['run'];
  readonly #maxBatch: number;
  readonly #maxWaitMs: number;
  readonly #maxInFlight: number;
  readonly #timer: BatchTimer;
  /** The batch taking new items (at most one). */
  #open: Batch<I, O> | undefined;
  /** Full batches waiting for a free slot, oldest first (all older than the open one). */
  readonly #ready: Batch<I, O>[] = [];
  #inFlight = 0;
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(options: BatcherOptions<I, O>) {
    this.#run = options.run;
    this.#maxBatch = positiveInteger(options.maxBatch ?? DEFAULT_MAX_BATCH, 'maxBatch');
    this.#maxInFlight = positiveInteger(options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT, 'maxInFlight');
    const wait = options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
    if (!(wait >= 0 && Number.isFinite(wait))) throw new RangeError('maxWaitMs must be a finite number ≥ 0');
    this.#maxWaitMs = wait;
    this.#timer = options.timer ?? SYSTEM_TIMER;
  }

  /** Items waiting for their batch to leave. */
  get pending(): number {
    let n = this.#open?.entries.length ?? 0;
    for (const batch of this.#ready) n += batch.entries.length;
    return n;
  }

  /** Batches running now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The item's result, once its batch has run; rejects with its error, its batch's, or its signal's reason. */
  submit(item: I, signal?: AbortSignal): Promise<O> {
    if (this.#closed) return Promise.reject(new Error('Batcher is closed'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const { promise, resolve, reject } = Promise.withResolvers<O>();
    const batch = this.#open ?? this.#openBatch();
    const entry: Entry<I, O> = { item, resolve, reject, signal, onAbort: undefined, batch, done: false };
    batch.entries.push(entry);
    if (signal !== undefined) {
      entry.onAbort = () => this.#abandon(entry);
      signal.addEventListener('abort', entry.onAbort, { once: true });
    }
    if (batch.entries.length >= this.#maxBatch) {
      this.#seal(batch);
      this.#pump();
    }
    return promise;
  }

  /** Sends everything waiting now (as slots allow), without waiting for batches to fill; later items batch as usual. */
  flush(): void {
    if (this.#open !== undefined) this.#seal(this.#open);
    this.#pump();
  }

  /** Sends everything waiting now and resolves once every batch has finished; later submissions are refused. */
  close(): Promise<void> {
    this.#closed = true;
    this.flush();
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #openBatch(): Batch<I, O> {
    const batch: Batch<I, O> = {
      entries: [],
      due: false,
      timer: undefined,
      controller: undefined,
      wanted: 0,
    };
    batch.timer = this.#timer.set(() => {
      batch.timer = undefined;
      batch.due = true;
      this.#pump();
    }, this.#maxWaitMs);
    this.#open = batch;
    return batch;
  }

  /** Takes no more items (full, or closing): it leaves at the next free slot, in order. */
  #seal(batch: Batch<I, O>): void {
    if (this.#open !== batch) return;
    this.#open = undefined;
    this.#ready.push(batch);
  }

  /** Starts waiting batches, oldest first, while there is a free slot. */
  #pump(): void {
    while (this.#inFlight < this.#maxInFlight) {
      let batch = this.#ready.shift();
      if (batch === undefined && this.#open?.due) {
        batch = this.#open;
        this.#open = undefined;
      }
      if (batch === undefined) return;
      void this.#send(batch);
    }
  }

  async #send(batch: Batch<I, O>): Promise<void> {
    if (batch.timer !== undefined) this.#timer.clear(batch.timer);
    const entries = batch.entries;
    const controller = new AbortController();
    batch.controller = controller;
    batch.wanted = entries.length;
    this.#inFlight++;
    let results: ReadonlyArray<O | Error> | undefined;
    let failure: unknown;
    try {
      results = await this.#run(
        entries.map((e) => e.item),
        controller.signal,
      );
      if (!Array.isArray(results) || results.length !== entries.length) {
        failure = new Error(
          `Batcher: run answered ${Array.isArray(results) ? results.length : 'no'} results for ${entries.length} items`,
        );
      }
    } catch (error) {
      failure = error;
    }
    this.#inFlight--;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.done) continue;
      entry.done = true;
      if (entry.onAbort !== undefined) entry.signal!.removeEventListener('abort', entry.onAbort);
      const result = failure === undefined ? results![i] : undefined;
      if (failure !== undefined) entry.reject(failure);
      else if (result instanceof Error) entry.reject(result);
      else entry.resolve(result as O);
    }
    this.#pump();
    if (this.#isIdle()) for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** The caller has gone: rejected now; out of its batch if that has not left. */
  #abandon(entry: Entry<I, O>): void {
    if (entry.done) return;
    entry.done = true;
    entry.reject(entry.signal!.reason);
    const batch = entry.batch;
    if (batch.controller !== undefined) {
      if (--batch.wanted === 0) batch.controller.abort(entry.signal!.reason);
      return;
    }
    batch.entries.splice(batch.entries.indexOf(entry), 1);
    if (batch.entries.length > 0) return;
    // An emptied batch is never sent.
    if (batch.timer !== undefined) this.#timer.clear(batch.timer);
    if (this.#open === batch) this.#open = undefined;
    else this.#ready.splice(this.#ready.indexOf(batch), 1);
    this.#pump();
    if (this.#isIdle()) for (const resolve of this.#idle.splice(0)) resolve();
  }

  #isIdle(): boolean {
    return this.#inFlight === 0 && this.#ready.length === 0 && this.#open === undefined;
  }
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be an integer ≥ 1`);
  return value;
}
