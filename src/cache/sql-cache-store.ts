/**
 * L3: cached answers in the gateway's SQL database (SQLite or PostgreSQL),
 * opt-in with `cache.sql.enabled`. It outlives what the tiers above lose:
 * restarts, memory eviction, a Redis flush or failover.
 *
 * Lifetime. A row is served until the earlier of the entry's own expiry and
 * `stored_at + cache.sql.ttl_s`. The entry's expiry (the model's `ttl_s`,
 * stretched for costly answers, or the request's `x-switchyard-cache-ttl`) is
 * a freshness promise that no tier breaks: "long-lived" means the answer
 * survives what the other tiers forget, never that it is served longer than
 * its model allows. `ttl_s` here only caps how long the table keeps anything.
 * The cap is applied again on every read, so lowering `cache.sql.ttl_s` takes
 * effect at once for rows already stored; a hit promoted to memory and Redis
 * carries the capped expiry with it.
 *
 * Expired rows are swept in the background: small batches (one short DELETE
 * each, yielding between them; on PostgreSQL rows another instance is
 * already deleting are skipped, not waited for), a bounded number per run, a
 * run every `sweepIntervalMs` (sooner while a backlog remains), on an
 * unref'd timer stopped by `close()`. Lookups never depend on the sweep: they
 * filter on expiry themselves.
 *
 * Every query uses the primary, never a read replica: a lagging replica
 * would serve an answer an invalidation has just removed.
 *
 * While the database fails, lookups and writes are refused at once for
 * UNAVAILABLE_BACKOFF_MS after each failure (the caller counts a miss and goes
 * on): an unreachable PostgreSQL costs one connect timeout, not one per request.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Database } from '../store/sql.ts';
import {
  type CacheEntry,
  type CacheFilter,
  type CacheKey,
  type CacheStore,
  cacheKeyString,
} from './cache-store.ts';

/** Larger answers are not kept here (the largest common ones, embedding batches, fit). */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
const DEFAULT_SWEEP_INTERVAL_MS = 60_000;
/** While a run left expired rows behind, the next one comes this soon. */
const BACKLOG_SWEEP_DELAY_MS = 1_000;
/** Rows per DELETE (sweep and invalidation): each holds the write lock only briefly. */
const DEFAULT_BATCH_ROWS = 500;
/** DELETEs per sweep run: 10,000 rows a run at the defaults. */
const DEFAULT_SWEEP_MAX_BATCHES = 20;
/** After a failed lookup or write, the tier is skipped this long before the database is asked again. */
export const UNAVAILABLE_BACKOFF_MS = 5_000;

export class SqlCacheUnavailableError extends Error {
  override readonly name = 'SqlCacheUnavailableError';
}

export interface SqlCacheStoreOptions {
  /** `cache.sql.ttl_s` in ms: the longest this tier keeps an answer. */
  ttlMs: number;
  /** UTF-8 bytes; a larger answer is not stored here (and replaces no older one). */
  maxBodyBytes?: number;
  /** 0: no background sweep (call `sweep()` yourself). */
  sweepIntervalMs?: number;
  batchRows?: number;
  sweepMaxBatches?: number;
  /** Told when a background sweep fails; the next run tries again. */
  onSweepError?: (error: unknown) => void;
  clock?: () => number;
}

export class SqlCacheStore implements CacheStore {
  readonly tier = 'sql' as const;
  readonly #database: Database;
  readonly #ttlMs: number;
  readonly #maxBodyBytes: number;
  readonly #sweepIntervalMs: number;
  readonly #batchRows: number;
  readonly #sweepMaxBatches: number;
  readonly #onSweepError: (error: unknown) => void;
  readonly #clock: () => number;
  readonly #writes = new Set<Promise<void>>();
  #sweeping: Promise<number> | undefined;
  #backlog = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Clock time until which the database is not asked (it failed just before). */
  #downUntil = 0;

  constructor(database: Database, options: SqlCacheStoreOptions) {
    if (!(options.ttlMs > 0)) throw new RangeError('SqlCacheStore: ttlMs must be > 0');
    this.#database = database;
    this.#ttlMs = options.ttlMs;
    this.#maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#sweepIntervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    this.#batchRows = options.batchRows ?? DEFAULT_BATCH_ROWS;
    this.#sweepMaxBatches = options.sweepMaxBatches ?? DEFAULT_SWEEP_MAX_BATCHES;
    this.#onSweepError = options.onSweepError ?? (() => {});
    this.#clock = options.clock ?? Date.now;
    // The first run at a random point of the first interval: instances started together do not sweep together.
    if (this.#sweepIntervalMs > 0) this.#schedule(this.#sweepIntervalMs * (0.5 + Math.random() / 2));
  }

  async get(key: CacheKey): Promise<CacheEntry | undefined> {
    this.#ensureAvailable();
    const now = this.#clock();
    const row = await this.#guard(
      this.#database.db
        .selectFrom('response_cache')
        .select([
          'model',
          'scope',
          'body',
          'stored_at',
          'expires_at',
          'prompt_tokens',
          'completion_tokens',
          'cost_micros',
        ])
        .where('key', '=', cacheKeyString(key))
        .where('expires_at', '>', now)
        .where('stored_at', '>', now - this.#ttlMs)
        .executeTakeFirst(),
    );
    if (row === undefined) return undefined;
    return {
      body: row.body,
      model: row.model,
      scope: row.scope,
      storedAt: Number(row.stored_at),
      expiresAt: Math.min(Number(row.expires_at), Number(row.stored_at) + this.#ttlMs),
      promptTokens: Number(row.prompt_tokens),
      completionTokens: Number(row.completion_tokens),
      ...(row.cost_micros === null ? {} : { costMicros: Number(row.cost_micros) }),
    };
  }

  /** Upserts; tracked until written, so `close()` can wait for it. */
  set(key: CacheKey, entry: CacheEntry): Promise<void> {
    try {
      this.#ensureAvailable();
    } catch (error) {
      return Promise.reject(error);
    }
    const write = this.#guard(this.#write(key, entry));
    const settled = write.then(
      () => {},
      () => {},
    );
    this.#writes.add(settled);
    void settled.then(() => this.#writes.delete(settled));
    return write;
  }

  async invalidate(filter: CacheFilter): Promise<number> {
    this.#ensureOpen();
    let removed = 0;
    for (;;) {
      const deleted = await this.#deleteBatch(filter, undefined);
      removed += deleted;
      if (deleted < this.#batchRows) return removed;
      await nextTurn();
    }
  }

  /**
   * Deletes expired rows, at most `sweepMaxBatches` batches; resolves with how
   * many. One run at a time: a call during a run joins it.
   */
  sweep(): Promise<number> {
    this.#sweeping ??= this.#sweepBatches().finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  /** Stops sweeping and waits for the sweep and the writes in flight; later calls reject. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await Promise.all([this.#sweeping?.catch(() => 0), ...this.#writes]);
  }

  async #write(key: CacheKey, entry: CacheEntry): Promise<void> {
    const name = cacheKeyString(key);
    const expiresAt = Math.min(entry.expiresAt, entry.storedAt + this.#ttlMs);
    if (expiresAt <= this.#clock() || !this.#storable(entry)) {
      // The newest answer for this key is not kept here; an older one must not outlive it.
      await this.#database.db.deleteFrom('response_cache').where('key', '=', name).execute();
      return;
    }
    const row = {
      key: name,
      model: entry.model,
      scope: entry.scope,
      body: entry.body,
      stored_at: entry.storedAt,
      expires_at: expiresAt,
      prompt_tokens: entry.promptTokens,
      completion_tokens: entry.completionTokens,
      cost_micros: entry.costMicros ?? null,
    };
    await this.#database.db
      .insertInto('response_cache')
      .values(row)
      .onConflict((conflict) =>
        conflict.column('key').doUpdateSet({
          model: row.model,
          scope: row.scope,
          body: row.body,
          stored_at: row.stored_at,
          expires_at: row.expires_at,
          prompt_tokens: row.prompt_tokens,
          completion_tokens: row.completion_tokens,
          cost_micros: row.cost_micros,
        }),
      )
      .execute();
  }

  /** Within the size bound, and no NUL (PostgreSQL refuses it in text; both dialects behave alike). */
  #storable(entry: CacheEntry): boolean {
    const { body } = entry;
    // A UTF-16 unit is at most 3 UTF-8 bytes: measure only when the bound is in doubt.
    if (body.length > this.#maxBodyBytes) return false;
    if (body.length * 3 > this.#maxBodyBytes && Buffer.byteLength(body) > this.#maxBodyBytes) return false;
    return !body.includes('\u0000') && !entry.model.includes('\u0000') && !entry.scope.includes('\u0000');
  }

  async #sweepBatches(): Promise<number> {
    let removed = 0;
    this.#backlog = false;
    for (let batch = 0; batch < this.#sweepMaxBatches; batch++) {
      if (this.#closed) return removed;
      if (batch > 0) await nextTurn();
      const deleted = await this.#deleteBatch({}, this.#clock());
      removed += deleted;
      if (deleted < this.#batchRows) return removed;
    }
    this.#backlog = true;
    return removed;
  }

  /**
   * One DELETE of at most `batchRows` rows matching `filter` (and expired by
   * `expiredAt`, when given): the rows are chosen by a bounded subquery, so no
   * statement ever locks or scans the whole table.
   */
  async #deleteBatch(filter: CacheFilter, expiredAt: number | undefined): Promise<number> {
    const { db, dialect } = this.#database;
    const result = await db
      .deleteFrom('response_cache')
      .where('key', 'in', (eb) =>
        eb
          .selectFrom('response_cache')
          .select('key')
          .$if(filter.model !== undefined, (q) => q.where('model', '=', filter.model!))
          .$if(filter.scope !== undefined, (q) => q.where('scope', '=', filter.scope!))
          .$if(expiredAt !== undefined, (q) => q.where('expires_at', '<=', expiredAt!))
          .limit(this.#batchRows)
          // Another instance's sweep deleting the same rows is not waited for (invalidation waits: it must remove all).
          .$if(dialect === 'postgres' && expiredAt !== undefined, (q) => q.forUpdate().skipLocked()),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.sweep()
        .catch((error: unknown) => this.#onSweepError(error))
        .finally(() => this.#schedule(this.#backlog ? BACKLOG_SWEEP_DELAY_MS : this.#sweepIntervalMs));
    }, delayMs);
    this.#timer.unref();
  }

  #ensureOpen(): void {
    if (this.#closed) throw new SqlCacheUnavailableError('SqlCacheStore is closed');
  }

  #ensureAvailable(): void {
    this.#ensureOpen();
    if (this.#clock() < this.#downUntil) {
      throw new SqlCacheUnavailableError('the database failed just before; skipping the SQL tier for now');
    }
  }

  /** Marks the database down for UNAVAILABLE_BACKOFF_MS when `query` fails. */
  async #guard<T>(query: Promise<T>): Promise<T> {
    try {
      return await query;
    } catch (error) {
      this.#downUntil = this.#clock() + UNAVAILABLE_BACKOFF_MS;
      throw error;
    }
  }
}
