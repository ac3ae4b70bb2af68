/**
 * What every cache tier stores and how it is addressed. A tier (memory,
 * Redis, SQL) implements CacheStore; ResponseCache composes tiers into one
 * read-through cache. The gateway's answers and a library user's values are
 * both stored as JSON text, so every tier holds the same bytes.
 */

/** One cached value and what it belongs to. */
export interface CacheEntry {
  /** The value as JSON text (for the gateway: the answer in its route's API format). */
  readonly body: string;
  /** The model name it answers for (an invalidation filter). */
  readonly model: string;
  /** Whose it is: `key:<id>`, `team:<id>` or `global` (an invalidation filter). */
  readonly scope: string;
  /** Unix ms when stored. */
  readonly storedAt: number;
  /** Unix ms after which it is never served. */
  readonly expiresAt: number;
  /** Tokens the answer cost upstream: what each hit saves. */
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** What computing it cost upstream, in micro-dollars (absent: unknown): what each hit saves. */
  readonly costMicros?: number | undefined;
}

/** Which entries an invalidation removes; an empty filter removes all. */
export interface CacheFilter {
  model?: string | undefined;
  scope?: string | undefined;
}

export type CacheTier = 'memory' | 'redis' | 'sql';

export interface CacheStore {
  readonly tier: CacheTier;
  /** The live entry under `key`, or undefined. Rejects when the tier cannot be reached. */
  get(key: CacheKey): Promise<CacheEntry | undefined>;
  set(key: CacheKey, entry: CacheEntry): Promise<void>;
  /** Removes the entries matching `filter`; resolves with how many. */
  invalidate(filter: CacheFilter): Promise<number>;
  /**
   * A tier shared by instances may lend a short lock, so that identical misses
   * on several instances make one computation: resolves with a token when
   * this caller now holds it, undefined when another holder does.
   */
  tryLock?(key: CacheKey, ttlMs: number): Promise<string | undefined>;
  /** Gives the lock back (only the holder's own token releases it). */
  unlock?(key: CacheKey, token: string): Promise<void>;
  /** Whether anyone holds the lock now. */
  isLocked?(key: CacheKey): Promise<boolean>;
  /** Stops background work and waits for writes in flight (before the connection beneath is closed). */
  close?(): Promise<void>;
}

/**
 * A cache address: the model and scope it belongs to and the hash of what was
 * asked. Tiers build their own names from it (Redis puts model and scope in
 * the key name, so invalidation by model or scope is a pattern scan).
 */
export interface CacheKey {
  readonly model: string;
  readonly scope: string;
  readonly hash: string;
}

/** One string per key, unambiguous: the parts are URI-encoded, so none contains ':'. */
export function cacheKeyString(key: CacheKey): string {
  return `${encodeURIComponent(key.model)}:${encodeURIComponent(key.scope)}:${key.hash}`;
}

export function matchesFilter(entry: { model: string; scope: string }, filter: CacheFilter): boolean {
  return (
    (filter.model === undefined || entry.model === filter.model) &&
    (filter.scope === undefined || entry.scope === filter.scope)
  );
}
