/**
 * Probes behind the health endpoints.
 *
 * Redis gets a cached check: health endpoints are polled by load balancers,
 * orchestrators and dashboards, often concurrently, and a PING issued while
 * Redis is away waits in ioredis's offline queue for the command timeout. So a
 * client that is not connected is reported at once from its status, and a
 * connected one is pinged at most once per `maxAgeMs`, by one request at a
 * time (the others share that PING).
 */
import type { Redis } from 'ioredis';
import { pingRedis } from '../store/redis.ts';

export interface Check {
  ok: boolean;
  detail?: string;
}

/** Runs `work` with a deadline; any failure becomes `{ ok: false, detail }`. */
export async function withTimeout(work: (signal: AbortSignal) => Promise<void>, ms: number): Promise<Check> {
  const signal = AbortSignal.timeout(ms);
  try {
    await Promise.race([
      work(signal),
      new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('timed out')))),
    ]);
    return { ok: true };
  } catch (error) {
    return { ok: false, detail: error instanceof Error ? error.message.slice(0, 200) : 'failed' };
  }
}

export interface RedisCheckOptions {
  /** How long a PING result is reused. @default 2_000 */
  maxAgeMs?: number;
  /** @default 1_000 */
  timeoutMs?: number;
}

export class CachedRedisCheck {
  readonly #redis: Redis;
  readonly #maxAgeMs: number;
  readonly #timeoutMs: number;
  #last: { at: number; check: Check } | undefined;
  #inFlight: Promise<Check> | undefined;

  constructor(redis: Redis, options: RedisCheckOptions = {}) {
    this.#redis = redis;
    this.#maxAgeMs = options.maxAgeMs ?? 2_000;
    this.#timeoutMs = options.timeoutMs ?? 1_000;
  }

  check(): Promise<Check> {
    const status = this.#redis.status;
    // Reconnecting, connecting, closed: known without asking, and asking would wait.
    if (status !== 'ready') return Promise.resolve({ ok: false, detail: `redis ${status}` });
    const last = this.#last;
    if (last && Date.now() - last.at < this.#maxAgeMs) return Promise.resolve(last.check);
    this.#inFlight ??= withTimeout((signal) => pingRedis(this.#redis, signal), this.#timeoutMs).then(
      (check) => {
        this.#last = { at: Date.now(), check };
        this.#inFlight = undefined;
        return check;
      },
    );
    return this.#inFlight;
  }
}
