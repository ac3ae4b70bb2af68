/**
 * L2: cached answers in Redis, shared by every gateway instance.
 *
 * One string per entry (the entry as JSON) with Redis's own expiry (PX), so
 * Redis evicts what has lapsed. Names put model and scope before the hash:
 * invalidating a model or a key is a SCAN over a pattern.
 *
 * While the connection is not ready a lookup fails at once instead of waiting
 * in ioredis's offline queue: the caller counts it as a miss and answers from
 * upstream, and the cache is back by itself when the connection is.
 */
import { randomUUID } from 'node:crypto';
import { type RedisConnection, scanRedis, unlinkScanned } from '../store/redis.ts';
import type { RedisKeys } from '../store/redis-keys.ts';
import { defineScript, type ScriptCall } from '../store/redis-scripts.ts';
import {
  type CacheEntry,
  type CacheFilter,
  type CacheKey,
  type CacheStore,
  cacheKeyString,
} from './cache-store.ts';

export class CacheUnavailableError extends Error {
  override readonly name = 'CacheUnavailableError';
}

const SCAN_COUNT = 500;

export class RedisCacheStore implements CacheStore {
  readonly tier = 'redis' as const;
  readonly #redis: RedisConnection;
  readonly #keys: RedisKeys;
  readonly #clock: () => number;
  readonly #releaseLock: ScriptCall;

  constructor(redis: RedisConnection, keys: RedisKeys, options: { clock?: () => number } = {}) {
    this.#redis = redis;
    this.#keys = keys;
    this.#clock = options.clock ?? Date.now;
    this.#releaseLock = defineScript(redis, 'cache-release-lock-1');
  }

  /** False while the connection is down: lookups and writes are skipped, not queued. */
  get available(): boolean {
    return this.#redis.status === 'ready';
  }

  async get(key: CacheKey): Promise<CacheEntry | undefined> {
    this.#ensureAvailable();
    const text = await this.#redis.get(this.#keys.cacheEntry(cacheKeyString(key)));
    if (text === null) return undefined;
    const entry = parseEntry(text);
    // Redis expires the key itself; a clock a little ahead of Redis's must not serve a lapsed entry.
    if (entry === undefined || entry.expiresAt <= this.#clock()) return undefined;
    return entry;
  }

  async set(key: CacheKey, entry: CacheEntry): Promise<void> {
    this.#ensureAvailable();
    const ttlMs = Math.ceil(entry.expiresAt - this.#clock());
    if (ttlMs <= 0) return;
    await this.#redis.set(this.#keys.cacheEntry(cacheKeyString(key)), JSON.stringify(entry), 'PX', ttlMs);
  }

  async invalidate(filter: CacheFilter): Promise<number> {
    this.#ensureAvailable();
    const pattern = this.#keys.cachePattern(encoded(filter.model), encoded(filter.scope));
    let removed = 0;
    // Node by node on a cluster: the entries are spread over its masters.
    for await (const { names, node } of scanRedis(this.#redis, pattern, SCAN_COUNT)) {
      removed += await unlinkScanned(this.#redis, node, names);
    }
    return removed;
  }

  async tryLock(key: CacheKey, ttlMs: number): Promise<string | undefined> {
    this.#ensureAvailable();
    const token = randomUUID();
    const set = await this.#redis.set(this.#lockName(key), token, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
    return set === 'OK' ? token : undefined;
  }

  async unlock(key: CacheKey, token: string): Promise<void> {
    this.#ensureAvailable();
    await this.#releaseLock([this.#lockName(key)], [token]);
  }

  async isLocked(key: CacheKey): Promise<boolean> {
    this.#ensureAvailable();
    return (await this.#redis.exists(this.#lockName(key))) === 1;
  }

  #lockName(key: CacheKey): string {
    return this.#keys.cacheLock(cacheKeyString(key));
  }

  #ensureAvailable(): void {
    if (!this.available) throw new CacheUnavailableError(`redis is ${this.#redis.status}`);
  }
}

function encoded(part: string | undefined): string | undefined {
  return part === undefined ? undefined : encodeURIComponent(part);
}

/** An entry read back; anything malformed (another version's, hand-written) is a miss. */
function parseEntry(text: string): CacheEntry | undefined {
  try {
    const value = JSON.parse(text) as Partial<CacheEntry>;
    if (
      typeof value.body !== 'string' ||
      typeof value.model !== 'string' ||
      typeof value.scope !== 'string' ||
      typeof value.storedAt !== 'number' ||
      typeof value.expiresAt !== 'number'
    ) {
      return undefined;
    }
    return {
      body: value.body,
      model: value.model,
      scope: value.scope,
      storedAt: value.storedAt,
      expiresAt: value.expiresAt,
      promptTokens: typeof value.promptTokens === 'number' ? value.promptTokens : 0,
      completionTokens: typeof value.completionTokens === 'number' ? value.completionTokens : 0,
      ...(typeof value.costMicros === 'number' ? { costMicros: value.costMicros } : {}),
    };
  } catch {
    return undefined;
  }
}
