/**
 * Hedged requests: when the first attempt is slow to answer, start another
 * one and take whichever answers first; the others are aborted.
 *
 * "Answer" is whatever the launched promise resolves with — the dispatcher
 * resolves at the first byte a client could see (a stream's first chunk), so a
 * hedge never starts after the client got anything. Each attempt gets its own
 * AbortController chained to the caller's signal, so losing a race aborts only
 * that attempt, and a client going away aborts all of them.
 */

export class HedgeLostError extends Error {
  override readonly name = 'HedgeLostError';
  constructor() {
    super('another attempt answered first');
  }
}

export interface HedgeOptions<T> {
  /** Wait this long for an answer before launching the next attempt. */
  delayMs: number;
  /** Attempts launched beyond the first. @default 1 */
  maxHedges?: number;
  signal?: AbortSignal;
  /** A losing attempt that answered anyway (a near tie): release what it holds. */
  discard?: (value: T, index: number) => void;
}

export interface HedgeResult<T> {
  value: T;
  /** Which attempt won: 0 for the first. */
  index: number;
}

/**
 * Runs `launch(0, signal)`, and `launch(n, signal)` for each hedge, first to
 * resolve wins. `launch` may return `undefined` when it has nothing to hedge
 * with (no further candidate), which stops hedging. If every launched attempt
 * fails, the first attempt's error is rethrown (hedges that fail simply drop out).
 *
 * @example
 * const { value } = await hedge((i, signal) => fetch(mirrors[i]!, { signal }), { delayMs: 200 });
 */
export function hedge<T>(
  launch: (index: number, signal: AbortSignal) => Promise<T> | undefined,
  options: HedgeOptions<T>,
): Promise<HedgeResult<T>> {
  const maxHedges = options.maxHedges ?? 1;
  return new Promise<HedgeResult<T>>((resolve, reject) => {
    const controllers: AbortController[] = [];
    const errors: unknown[] = [];
    let running = 0;
    let settled = false;
    let exhausted = false;
    let timer: NodeJS.Timeout | undefined;

    const finish = (): void => {
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      for (const controller of controllers) controller.abort(options.signal!.reason);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });

    const start = (index: number): void => {
      const controller = new AbortController();
      const signal = options.signal
        ? AbortSignal.any([options.signal, controller.signal])
        : controller.signal;
      const promise = launch(index, signal);
      if (promise === undefined) {
        exhausted = true;
        if (running === 0 && !settled) {
          finish();
          reject(errors[0]);
        }
        return;
      }
      controllers[index] = controller;
      running++;
      promise.then(
        (value) => {
          running--;
          if (settled) {
            options.discard?.(value, index);
            return;
          }
          finish();
          controllers.forEach((other, i) => {
            if (i !== index) other.abort(new HedgeLostError());
          });
          resolve({ value, index });
        },
        (error: unknown) => {
          running--;
          errors[index] = error;
          if (settled || running > 0) return;
          // Every launched attempt failed: the caller decides about retries, not the hedger.
          finish();
          const first = errors.find((e) => e !== undefined);
          reject(first ?? error);
        },
      );
      if (index < maxHedges && !exhausted) {
        clearTimeout(timer);
        timer = setTimeout(() => {
          if (!settled && running > 0) start(index + 1);
        }, options.delayMs);
      }
    };

    if (options.signal?.aborted) {
      finish();
      reject(options.signal.reason);
      return;
    }
    start(0);
  });
}

/**
 * Recent time-to-first-byte samples of one target, for a `p95` hedge delay.
 * A small ring: the percentile follows the target's current behaviour, and
 * computing it (sort of 128 numbers) is cheap next to an upstream call.
 */
export class LatencySketch {
  readonly #samples: number[] = [];
  readonly #size: number;
  #next = 0;

  constructor(size = 128) {
    this.#size = size;
  }

  add(ms: number): void {
    if (this.#samples.length < this.#size) this.#samples.push(ms);
    else this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % this.#size;
  }

  get count(): number {
    return this.#samples.length;
  }

  /** The q-quantile (0..1), or undefined with fewer than `minSamples` samples. */
  quantile(q: number, minSamples = 20): number | undefined {
    if (this.#samples.length < minSamples) return undefined;
    const sorted = [...this.#samples].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  }
}
