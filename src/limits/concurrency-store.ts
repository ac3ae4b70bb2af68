/**
 * In-flight slots per subject (`max_concurrent`): in this process, or in
 * Redis so the cap holds across instances (src/store/lua/concurrency-acquire-1.lua).
 * A slot is a lease that lapses on its own if its holder never releases it
 * (an instance killed mid-request), so a crash cannot lower a key's cap for good.
 */
import { randomBytes } from 'node:crypto';
import { assertRedisReady, type RedisConnection } from '../store/redis.ts';
import type { RedisKeys } from '../store/redis-keys.ts';
import { defineScript, type ScriptCall } from '../store/redis-scripts.ts';

/** How long a slot is held unless released: longer than any request is let run. */
export const LEASE_MS = 15 * 60_000;

export interface ConcurrencySlot {
  /** Frees the slot (idempotent). */
  release(): Promise<void>;
}

export interface ConcurrencyStore {
  /** One slot of `subject` if fewer than `max` are held, else undefined; `held` counts them after the call. */
  acquire(subject: string, max: number): Promise<{ slot: ConcurrencySlot | undefined; held: number }>;
  /** `acquire` answered in the tick, by a store in this process. */
  acquireNow?(subject: string, max: number): { slot: ConcurrencySlot | undefined; held: number };
}

const RELEASED = Promise.resolve();

export class MemoryConcurrencyStore implements ConcurrencyStore {
  readonly #held = new Map<string, number>();

  async acquire(subject: string, max: number): Promise<{ slot: ConcurrencySlot | undefined; held: number }> {
    return this.acquireNow(subject, max);
  }

  acquireNow(subject: string, max: number): { slot: ConcurrencySlot | undefined; held: number } {
    const held = this.#held.get(subject) ?? 0;
    if (held >= max) return { slot: undefined, held };
    this.#held.set(subject, held + 1);
    let released = false;
    const slot: ConcurrencySlot = {
      // Freed in the tick; the promise is only the interface's.
      release: () => {
        if (released) return RELEASED;
        released = true;
        const now = (this.#held.get(subject) ?? 1) - 1;
        if (now <= 0) this.#held.delete(subject);
        else this.#held.set(subject, now);
        return RELEASED;
      },
    };
    return { slot, held: held + 1 };
  }
}

export class RedisConcurrencyStore implements ConcurrencyStore {
  readonly #redis: RedisConnection;
  readonly #keys: RedisKeys;
  readonly #acquire: ScriptCall;
  readonly #leaseMs: number;

  constructor(redis: RedisConnection, keys: RedisKeys, leaseMs = LEASE_MS) {
    this.#redis = redis;
    this.#keys = keys;
    this.#acquire = defineScript(redis, 'concurrency-acquire-1');
    this.#leaseMs = leaseMs;
  }

  async acquire(subject: string, max: number): Promise<{ slot: ConcurrencySlot | undefined; held: number }> {
    assertRedisReady(this.#redis);
    const key = this.#keys.concurrencyLeases(subject);
    const lease = randomBytes(8).toString('hex');
    const [granted, held] = (await this.#acquire([key], [max, lease, this.#leaseMs])) as [number, number];
    if (granted !== 1) return { slot: undefined, held };
    let released = false;
    const slot: ConcurrencySlot = {
      release: async () => {
        if (released) return;
        released = true;
        await this.#redis.zrem(key, lease);
      },
    };
    return { slot, held };
  }
}
