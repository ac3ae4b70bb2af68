/**
 * Circuit breaker state shared through Redis, so every gateway instance sees
 * the same breakers: an instance that opens a breaker publishes it and the
 * others stop sending to that target; half-open probe permits are one counter
 * per open period, with a TTL, so a crashed instance cannot hold one forever.
 *
 * Every mutation is one Lua script (atomic; no read-modify-write races
 * between instances). Reads on the hot path never reach Redis: breakers keep
 * their state locally and this store pushes transitions to them over pub/sub.
 *
 * Redis away: each operation falls back to a local in-memory store (this
 * instance keeps protecting itself on its own counts), logs once, and stops
 * asking Redis for a few seconds so requests do not wait on command timeouts.
 */
import type { Redis } from 'ioredis';
import { RedisKeys } from '../store/redis-keys.ts';
import {
  type BreakerStore,
  type BreakerStoreListener,
  MemoryBreakerStore,
  type SharedBreakerState,
} from './breaker-store.ts';

/** Shared state outlives any open period; a stale record simply expires. */
const STATE_TTL_MS = 24 * 3600 * 1000;
const SUCCESS_TTL_MS = 3600 * 1000;
/** After a Redis failure, stay local this long before trying Redis again. */
const BACKOFF_MS = 5_000;

// Writes a transition unless the stored one wins (see supersedes() in breaker-store.ts: a newer epoch, or an
// isolation that only a close lifts), then announces the one that stands. An isolation
// is kept without expiry: it lasts until an operator resets it.
const PUBLISH = `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and (tonumber(decoded.epoch) > tonumber(ARGV[2]) or (decoded.state == 'isolated' and ARGV[5] ~= 'closed')) then
    redis.call('PUBLISH', ARGV[4], current)
    return 0
  end
end
if ARGV[5] == 'isolated' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
end
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1`;

// One more probe if fewer than ARGV[1] are held; every grant pushes the permits' expiry out.
const ACQUIRE_PROBE = `
local held = redis.call('INCR', KEYS[1])
if held > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

const RELEASE_PROBE = `
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
if held > 0 then redis.call('DECR', KEYS[1]) end
return 1`;

const PROBE_SUCCEEDED = `
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return n`;

export interface BreakerStoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface RedisBreakerStoreOptions {
  /** Names its keys and channel; stores hear each other only with the same prefix. @default new RedisKeys() */
  keys?: RedisKeys;
}

interface Message extends SharedBreakerState {
  id: string;
}

export class RedisBreakerStore implements BreakerStore {
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #local = new MemoryBreakerStore();
  readonly #listeners = new Set<BreakerStoreListener>();
  readonly #logger: BreakerStoreLogger;
  readonly #keys: RedisKeys;
  #downUntil = 0;
  #degraded = false;

  private constructor(redis: Redis, logger: BreakerStoreLogger, keys: RedisKeys) {
    this.#redis = redis;
    this.#logger = logger;
    this.#keys = keys;
    this.#subscriber = redis.duplicate();
  }

  /** Subscribes before returning, so no transition published afterwards is missed. */
  static async start(
    redis: Redis,
    logger: BreakerStoreLogger,
    options: RedisBreakerStoreOptions = {},
  ): Promise<RedisBreakerStore> {
    const store = new RedisBreakerStore(redis, logger, options.keys ?? new RedisKeys());
    const subscriber = store.#subscriber;
    subscriber.on('error', () => {
      // connectRedis's client logs connection errors; the duplicate would only repeat them.
    });
    subscriber.on('message', (_channel: string, text: string) => store.#onMessage(text));
    try {
      await subscriber.subscribe(store.#keys.breakerChannel);
    } catch (error) {
      store.#failed(error);
    }
    return store;
  }

  async publish(id: string, shared: SharedBreakerState): Promise<void> {
    const message: Message = { id, ...shared };
    const json = JSON.stringify(message);
    const done = await this.#try(() =>
      this.#redis.eval(
        PUBLISH,
        1,
        this.#keys.breakerState(id),
        json,
        String(shared.epoch),
        String(STATE_TTL_MS),
        this.#keys.breakerChannel,
        shared.state,
      ),
    );
    // Without Redis, this instance's own breakers still hear of it.
    if (done === undefined) await this.#local.publish(id, shared);
  }

  async read(id: string): Promise<SharedBreakerState | undefined> {
    const text = await this.#try(() => this.#redis.get(this.#keys.breakerState(id)));
    if (typeof text !== 'string') return this.#local.read(id);
    return parseState(text);
  }

  async acquireProbe(id: string, epoch: number, max: number, ttlMs: number): Promise<boolean> {
    const granted = await this.#try(() =>
      this.#redis.eval(ACQUIRE_PROBE, 1, this.#keys.breakerProbes(id, epoch), String(max), String(ttlMs)),
    );
    if (granted === undefined) return this.#local.acquireProbe(id, epoch, max, ttlMs);
    return Number(granted) === 1;
  }

  async releaseProbe(id: string, epoch: number): Promise<void> {
    const done = await this.#try(() =>
      this.#redis.eval(RELEASE_PROBE, 1, this.#keys.breakerProbes(id, epoch)),
    );
    if (done === undefined) await this.#local.releaseProbe(id, epoch);
  }

  async probeSucceeded(id: string, epoch: number): Promise<number> {
    const n = await this.#try(() =>
      this.#redis.eval(
        PROBE_SUCCEEDED,
        1,
        this.#keys.breakerProbeSuccesses(id, epoch),
        String(SUCCESS_TTL_MS),
      ),
    );
    if (n === undefined) return this.#local.probeSucceeded(id, epoch);
    return Number(n);
  }

  subscribe(listener: BreakerStoreListener): () => void {
    this.#listeners.add(listener);
    const unsubscribeLocal = this.#local.subscribe(listener);
    return () => {
      this.#listeners.delete(listener);
      unsubscribeLocal();
    };
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    await this.#local.close();
    await this.#subscriber.quit().catch(() => this.#subscriber.disconnect());
  }

  #onMessage(text: string): void {
    const message = parseState(text) as Message | undefined;
    if (!message || typeof message.id !== 'string') return;
    const { id, ...shared } = message;
    for (const listener of this.#listeners) listener(id, shared);
  }

  /** Runs a Redis operation, or returns `fallback` when Redis is (recently) unavailable. */
  /** The operation's result, or undefined while Redis is unreachable (callers fall back to local state). */
  async #try<T>(operation: () => Promise<T>): Promise<T | undefined> {
    if (Date.now() < this.#downUntil) return undefined;
    try {
      const result = await operation();
      if (this.#degraded) {
        this.#degraded = false;
        this.#logger.info({}, 'circuit breaker state is shared through redis again');
      }
      return result;
    } catch (error) {
      this.#failed(error);
      return undefined;
    }
  }

  #failed(error: unknown): void {
    this.#downUntil = Date.now() + BACKOFF_MS;
    if (this.#degraded) return;
    this.#degraded = true;
    this.#logger.warn(
      { err: error instanceof Error ? error.message : String(error) },
      'redis unavailable: circuit breakers fall back to local state',
    );
  }
}

function parseState(text: string): (SharedBreakerState & { id?: string }) | undefined {
  try {
    const value = JSON.parse(text) as Partial<Message>;
    const state = value.state;
    if (state !== 'open' && state !== 'closed' && state !== 'isolated') return undefined;
    if (typeof value.epoch !== 'number') return undefined;
    return {
      ...(typeof value.id === 'string' ? { id: value.id } : {}),
      state,
      epoch: value.epoch,
      openUntil: typeof value.openUntil === 'number' ? value.openUntil : 0,
    };
  } catch {
    return undefined;
  }
}
