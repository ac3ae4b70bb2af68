/**
 * When a dead HTTP worker's replacement starts. A worker killed once (OOM, a
 * stray kill -9) comes back at once; one that keeps dying (a bad upstream
 * answer crashing it, a full disk) is restarted ever more slowly, so the
 * primary never spins forking processes that die in their first second.
 */
export interface RestartPolicy {
  /**
   * Restarts within `windowMs` that start at once; beyond them each waits
   * twice as long as the one before, from 1 s up to `maxDelayMs`.
   * @default max(3, workers)
   */
  burst: number;
  /** @default 60_000 */
  windowMs: number;
  /** @default 30_000 */
  maxDelayMs: number;
}

export function defaultRestartPolicy(workers: number): RestartPolicy {
  return { burst: Math.max(3, workers), windowMs: 60_000, maxDelayMs: 30_000 };
}

/** Restart times, oldest first, and the delay the next one waits. */
export class RestartHistory {
  readonly #policy: RestartPolicy;
  readonly #times: number[] = [];

  constructor(policy: RestartPolicy) {
    this.#policy = policy;
  }

  /** Records a restart due now and returns how long it waits (ms). */
  next(now: number): { delayMs: number; recent: number } {
    const { burst, windowMs, maxDelayMs } = this.#policy;
    while (this.#times.length > 0 && this.#times[0]! <= now - windowMs) this.#times.shift();
    this.#times.push(now);
    const recent = this.#times.length;
    const excess = recent - burst;
    const delayMs = excess <= 0 ? 0 : Math.min(maxDelayMs, 1_000 * 2 ** (excess - 1));
    return { delayMs, recent };
  }
}
