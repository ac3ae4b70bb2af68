/**
 * ResponseCache: tiers read through in order (memory, then Redis), a hit in
 * a lower tier promoted to the ones above, writes to every tier with only the
 * memory one on the caller's path; and single flight, so identical misses
 * running at once make one computation and the others wait for its result.
 *
 * A tier that fails (Redis away) is a miss for that tier and counted; the
 * cache never fails a request. The gateway uses it through the pieces
 * (`lookup`, `lead`, `join`, `store`); a library user through `getOrCompute`.
 *
 * @example
 * const cache = new ResponseCache([new MemoryCacheStore({ maxBytes: 64 << 20 })]);
 * const answer = await cache.getOrCompute({ key: JSON.stringify(question), ttlMs: 60_000, compute: () => ask(question) });
 */
import { hash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  type CacheEntry,
  type CacheFilter,
  type CacheKey,
  type CacheStore,
  type CacheTier,
  cacheKeyString,
} from './cache-store.ts';
import { MemoryCacheStore } from './memory-cache-store.ts';

export interface CacheHit {
  entry: CacheEntry;
  tier: CacheTier;
}

/** Counters since start, read by the gateway's /metrics collector. */
export interface CacheStats {
  hits: Record<CacheTier, number>;
  misses: number;
  /** Lookups or writes a tier failed (e.g. Redis unreachable). */
  errors: Record<CacheTier, number>;
  stores: number;
  /** Requests that waited for an identical one in flight instead of calling upstream. */
  coalesced: number;
  promptTokensSaved: number;
  completionTokensSaved: number;
  /** Micro-dollars the hits' answers cost when computed (answers of unknown cost count 0). */
  costMicrosSaved: number;
}

/** The leader of a computation: `settle` exactly once, with the stored entry or undefined (nothing to share). */
export interface Flight {
  settle(entry: CacheEntry | undefined): void;
}

/** This instance holds the shared lock of a key: `release` once its answer is stored or given up. */
export interface SharedLease {
  release(): void;
}

export interface ResponseCacheOptions {
  /** Told when a tier fails; the cache itself goes on without it. */
  onTierError?: (tier: CacheTier, error: unknown) => void;
  clock?: () => number;
}

export class ResponseCache {
  readonly #tiers: CacheStore[];
  readonly #memory: MemoryCacheStore | undefined;
  readonly #flights = new Map<string, Promise<CacheEntry | undefined>>();
  readonly #onTierError: (tier: CacheTier, error: unknown) => void;
  readonly #clock: () => number;
  readonly stats: CacheStats = {
    hits: { memory: 0, redis: 0, sql: 0 },
    misses: 0,
    errors: { memory: 0, redis: 0, sql: 0 },
    stores: 0,
    coalesced: 0,
    promptTokensSaved: 0,
    completionTokensSaved: 0,
    costMicrosSaved: 0,
  };

  /** `tiers` fastest first. */
  constructor(tiers: CacheStore[], options: ResponseCacheOptions = {}) {
    if (tiers.length === 0) throw new RangeError('ResponseCache: at least one tier');
    this.#tiers = tiers;
    this.#memory = tiers.find((t): t is MemoryCacheStore => t instanceof MemoryCacheStore);
    this.#onTierError = options.onTierError ?? (() => {});
    this.#clock = options.clock ?? Date.now;
  }

  get clock(): () => number {
    return this.#clock;
  }

  /** Entries and bytes held in process memory (L1). */
  get memoryUsage(): { entries: number; bytes: number } {
    return { entries: this.#memory?.entries ?? 0, bytes: this.#memory?.bytes ?? 0 };
  }

  /**
   * The entry under `key` if process memory (L1) holds it, synchronously:
   * the common hit, answered without a flight or a promise. A miss here is not
   * counted (`lookup` goes on to the other tiers and counts it).
   */
  lookupMemory(key: CacheKey): CacheHit | undefined {
    const entry = this.#memory?.getNow(key);
    if (entry === undefined || entry.expiresAt <= this.#clock()) return undefined;
    this.#countHit('memory', entry);
    return { entry, tier: 'memory' };
  }

  /**
   * The first tier holding `key`, promoting the entry to the tiers above it.
   * `memoryMissed`: the caller's `lookupMemory` found nothing just before, with
   * no wait since, so process memory is not asked again.
   */
  async lookup(key: CacheKey, options?: { memoryMissed?: boolean }): Promise<CacheHit | undefined> {
    const first = options?.memoryMissed === true && this.#tiers[0] === this.#memory ? 1 : 0;
    for (let i = first; i < this.#tiers.length; i++) {
      const tier = this.#tiers[i]!;
      let entry: CacheEntry | undefined;
      try {
        entry = tier === this.#memory ? this.#memory.getNow(key) : await tier.get(key);
      } catch (error) {
        this.#tierFailed(tier.tier, error);
        continue;
      }
      if (entry === undefined || entry.expiresAt <= this.#clock()) continue;
      for (let j = 0; j < i; j++) this.#write(this.#tiers[j]!, key, entry);
      this.#countHit(tier.tier, entry);
      return { entry, tier: tier.tier };
    }
    this.stats.misses++;
    return undefined;
  }

  #countHit(tier: CacheTier, entry: CacheEntry): void {
    this.stats.hits[tier]++;
    this.#countSaved(entry);
  }

  /** What serving `entry` instead of computing it saved. */
  #countSaved(entry: CacheEntry): void {
    this.stats.promptTokensSaved += entry.promptTokens;
    this.stats.completionTokensSaved += entry.completionTokens;
    this.stats.costMicrosSaved += entry.costMicros ?? 0;
  }

  /** The computation of `key` running in this process, if one is: resolves with what it stored. */
  join(key: CacheKey): Promise<CacheEntry | undefined> | undefined {
    const flight = this.#flights.get(cacheKeyString(key));
    if (flight !== undefined) this.stats.coalesced++;
    return flight;
  }

  /** Makes the caller the one computing `key`; identical requests `join` it until it settles. */
  lead(key: CacheKey): Flight {
    const name = cacheKeyString(key);
    let settle!: (entry: CacheEntry | undefined) => void;
    const flight = new Promise<CacheEntry | undefined>((resolve) => {
      settle = resolve;
    });
    this.#flights.set(name, flight);
    let settled = false;
    return {
      settle: (entry) => {
        if (settled) return;
        settled = true;
        if (this.#flights.get(name) === flight) this.#flights.delete(name);
        settle(entry);
      },
    };
  }

  /**
   * Takes `key`'s lock in the first tier shared by instances (Redis), so an
   * identical miss on another instance waits for this one: a lease when taken,
   * `held` when another instance holds it, undefined when no tier lends locks
   * (or the one that does is unreachable: then each instance computes).
   */
  async lockShared(key: CacheKey, ttlMs: number): Promise<SharedLease | 'held' | undefined> {
    for (const tier of this.#tiers) {
      if (tier.tryLock === undefined) continue;
      let token: string | undefined;
      try {
        token = await tier.tryLock(key, ttlMs);
      } catch (error) {
        this.#tierFailed(tier.tier, error);
        return undefined;
      }
      if (token === undefined) return 'held';
      let released = false;
      return {
        release: () => {
          if (released) return;
          released = true;
          tier.unlock?.(key, token).catch((error: unknown) => this.#tierFailed(tier.tier, error));
        },
      };
    }
    return undefined;
  }

  /**
   * Waits for the instance holding `key`'s lock to store its answer, reading
   * the tiers that lend locks (Redis) every `pollMs`: the entry, or undefined once the lock is
   * gone without one, after `maxWaitMs`, or when `signal` aborts.
   */
  async waitShared(
    key: CacheKey,
    signal: AbortSignal,
    options: { maxWaitMs: number; pollMs: number },
  ): Promise<CacheEntry | undefined> {
    // The tiers that lend locks: the holder's answer is there before its lock is given back.
    const shared = this.#tiers.filter((tier) => tier.isLocked !== undefined);
    const deadline = this.#clock() + options.maxWaitMs;
    while (!signal.aborted && this.#clock() < deadline) {
      try {
        await delay(options.pollMs, undefined, { signal });
      } catch {
        return undefined;
      }
      let locked = false;
      for (const tier of shared) {
        try {
          const entry = await tier.get(key);
          if (entry !== undefined) {
            this.stats.coalesced++;
            this.#countSaved(entry);
            if (this.#memory) this.#memory.setNow(key, entry);
            return entry;
          }
          if (await tier.isLocked!(key)) locked = true;
        } catch (error) {
          this.#tierFailed(tier.tier, error);
          return undefined;
        }
      }
      if (!locked) return undefined;
    }
    return undefined;
  }

  /** Stores `entry` in every tier: at once in memory, in the others off the caller's path. Resolves when all are written. */
  store(key: CacheKey, entry: CacheEntry): Promise<void> {
    this.stats.stores++;
    return Promise.all(this.#tiers.map((tier) => this.#write(tier, key, entry))).then(() => undefined);
  }

  /** Removes matching entries from every tier; resolves with the count per tier. */
  async invalidate(filter: CacheFilter): Promise<Partial<Record<CacheTier, number>>> {
    const removed: Partial<Record<CacheTier, number>> = {};
    for (const tier of this.#tiers) {
      try {
        removed[tier.tier] = await tier.invalidate(filter);
      } catch (error) {
        this.#tierFailed(tier.tier, error);
        throw error;
      }
    }
    return removed;
  }

  /** Removes the entries matching `filter` from process memory (L1) only: another instance invalidated the shared tiers. */
  async invalidateMemory(filter: CacheFilter): Promise<number> {
    return (await this.#memory?.invalidate(filter)) ?? 0;
  }

  /**
   * The library's one call: the cached value of `key`, or `compute()`'s,
   * stored for `ttlMs`. Concurrent calls for one key compute once; a failed
   * computation is not cached and its waiters compute for themselves.
   */
  async getOrCompute<T>(options: {
    key: string | CacheKey;
    compute: () => Promise<T>;
    ttlMs: number;
  }): Promise<T> {
    const key =
      typeof options.key === 'string'
        ? { model: '', scope: 'global', hash: hash('sha256', options.key) }
        : options.key;
    const hit = await this.lookup(key);
    if (hit) return JSON.parse(hit.entry.body) as T;
    const running = this.join(key);
    if (running) {
      const entry = await running;
      if (entry) return JSON.parse(entry.body) as T;
    }
    const flight = this.lead(key);
    let entry: CacheEntry | undefined;
    try {
      const value = await options.compute();
      const now = this.#clock();
      entry = {
        body: JSON.stringify(value) ?? 'null',
        model: key.model,
        scope: key.scope,
        storedAt: now,
        expiresAt: now + options.ttlMs,
        promptTokens: 0,
        completionTokens: 0,
      };
      await this.store(key, entry);
      return value;
    } finally {
      flight.settle(entry);
    }
  }

  /** Stops every tier's background work and waits for its writes in flight; call before closing their connections. */
  async close(): Promise<void> {
    await Promise.all(this.#tiers.map((tier) => tier.close?.()));
  }

  #write(tier: CacheStore, key: CacheKey, entry: CacheEntry): Promise<void> {
    if (tier === this.#memory) {
      this.#memory.setNow(key, entry);
      return Promise.resolve();
    }
    return tier.set(key, entry).catch((error: unknown) => this.#tierFailed(tier.tier, error));
  }

  #tierFailed(tier: CacheTier, error: unknown): void {
    this.stats.errors[tier]++;
    this.#onTierError(tier, error);
  }
}
