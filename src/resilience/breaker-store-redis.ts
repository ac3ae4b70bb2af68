/**
 * Circuit breaker state shared through Redis, so every gateway instance sees
 * the same breakers: an instance that opens a breaker publishes it and the
 * others stop sending to that target; half-open probe permits are one counter
 * per open period, with a TTL, so a crashed instance cannot hold one forever.
 *
 * Every mutation is one Lua script (atomic; no read-modify-write races
 * between instances), a file under src/store/lua/ whose header states its
 * contract, defined once per connection. Reads on the hot path never reach
 * Redis: breakers keep their state locally and this store pushes transitions
 * to them over pub/sub. Names come from `RedisKeys` (the configured prefix).
 *
 * Redis away: each operation falls back to a local in-memory store (this
 * instance keeps protecting itself on its own counts), logs once, and stops
 * asking Redis for a few seconds so requests do not wait on command timeouts.
 */
import { followChannel, type RedisConnection, subscriberRedis } from '../store/redis.ts';
import { RedisKeys } from '../store/redis-keys.ts';
import { defineScript, type ScriptCall } from '../store/redis-scripts.ts';
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
  readonly #redis: RedisConnection;
  readonly #subscriber: RedisConnection;
  readonly #local = new MemoryBreakerStore();
  readonly #listeners = new Set<BreakerStoreListener>();
  readonly #logger: BreakerStoreLogger;
  readonly #keys: RedisKeys;
  readonly #publish: ScriptCall;
  readonly #acquireProbe: ScriptCall;
  readonly #releaseProbe: ScriptCall;
  readonly #probeSucceeded: ScriptCall;
  #downUntil = 0;
  #degraded = false;
  /** Breakers this instance has read or published: re-read after a reconnect. */
  readonly #ids = new Set<string>();
  #subscribed = false;

  private constructor(redis: RedisConnection, logger: BreakerStoreLogger, keys: RedisKeys) {
    this.#redis = redis;
    this.#logger = logger;
    this.#keys = keys;
    this.#publish = defineScript(redis, 'breaker-publish-1');
    this.#acquireProbe = defineScript(redis, 'breaker-acquire-probe-1');
    this.#releaseProbe = defineScript(redis, 'breaker-release-probe-1');
    this.#probeSucceeded = defineScript(redis, 'breaker-probe-succeeded-1');
    this.#subscriber = subscriberRedis(redis);
  }

  /** Subscribes before returning, so no transition published afterwards is missed. */
  static async start(
    redis: RedisConnection,
    logger: BreakerStoreLogger,
    options: RedisBreakerStoreOptions = {},
  ): Promise<RedisBreakerStore> {
    const store = new RedisBreakerStore(redis, logger, options.keys ?? new RedisKeys());
    const subscriber = store.#subscriber;
    subscriber.on('error', () => {
      // connectRedis's client logs connection errors; the duplicate would only repeat them.
    });
    subscriber.on('message', (_channel: string, text: string) => store.#onMessage(text));
    // Pub/sub keeps nothing for a subscriber that was away: a transition another
    // instance published while this one's connection was down (a Redis restart,
    // a Sentinel failover) is read back from its key once both connections are up.
    const resync = () => {
      if (store.#subscribed) void store.#resync();
    };
    subscriber.on('ready', resync);
    redis.on('ready', resync);
    try {
      await followChannel(subscriber, store.#keys.breakerChannel);
      store.#subscribed = true;
    } catch (error) {
      store.#failed(error);
    }
    return store;
  }

  async publish(id: string, shared: SharedBreakerState): Promise<void> {
    this.#ids.add(id);
    const message: Message = { id, ...shared };
    const json = JSON.stringify(message);
    const done = await this.#try(() =>
      this.#publish(
        [this.#keys.breakerState(id)],
        [json, shared.epoch, STATE_TTL_MS, this.#keys.breakerChannel, shared.state],
      ),
    );
    // Without Redis, this instance's own breakers still hear of it.
    if (done === undefined) await this.#local.publish(id, shared);
  }

  async read(id: string): Promise<SharedBreakerState | undefined> {
    this.#ids.add(id);
    const text = await this.#try(() => this.#redis.get(this.#keys.breakerState(id)));
    if (typeof text !== 'string') return this.#local.read(id);
    return parseMessage(text)?.shared;
  }

  async acquireProbe(id: string, epoch: number, max: number, ttlMs: number): Promise<boolean> {
    const granted = await this.#try(() =>
      this.#acquireProbe([this.#keys.breakerProbes(id, epoch)], [max, ttlMs]),
    );
    if (granted === undefined) return this.#local.acquireProbe(id, epoch, max, ttlMs);
    return Number(granted) === 1;
  }

  async releaseProbe(id: string, epoch: number): Promise<void> {
    const done = await this.#try(() => this.#releaseProbe([this.#keys.breakerProbes(id, epoch)]));
    if (done === undefined) await this.#local.releaseProbe(id, epoch);
  }

  async probeSucceeded(id: string, epoch: number): Promise<number> {
    const n = await this.#try(() =>
      this.#probeSucceeded([this.#keys.breakerProbeSuccesses(id, epoch)], [SUCCESS_TTL_MS]),
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

  /** Tells the listeners each known breaker's shared state as Redis has it now (they keep the newest epoch). */
  async #resync(): Promise<void> {
    for (const id of this.#ids) {
      const text = await this.#redis.get(this.#keys.breakerState(id)).catch(() => null);
      const shared = typeof text === 'string' ? parseMessage(text)?.shared : undefined;
      if (shared === undefined) continue;
      for (const listener of this.#listeners) listener(id, shared);
    }
  }

  #onMessage(text: string): void {
    const message = parseMessage(text);
    if (!message || typeof message.id !== 'string') return;
    for (const listener of this.#listeners) listener(message.id, message.shared);
  }

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

/** A stored state or an announcement: the state, and the breaker id it carries. */
function parseMessage(text: string): { id: unknown; shared: SharedBreakerState } | undefined {
  try {
    const value = JSON.parse(text) as Partial<Message>;
    const state = value.state;
    if (state !== 'open' && state !== 'closed' && state !== 'isolated') return undefined;
    if (typeof value.epoch !== 'number') return undefined;
    const openUntil = typeof value.openUntil === 'number' ? value.openUntil : 0;
    return { id: value.id, shared: { state, epoch: value.epoch, openUntil } };
  } catch {
    return undefined;
  }
}
