/**
 * Invalidation reaches every instance: `DELETE /admin/cache` clears the
 * shared tiers (Redis, SQL) itself, and each other instance's process memory
 * (and semantic index) only hears of it. With Redis, the filter is published
 * on one channel; every instance subscribed drops the matching entries from
 * its own memory tier.
 *
 * While an instance's subscription is down, messages are lost: its memory
 * tier can serve an invalidated answer until the entry's lifetime ends
 * (bounded by the model's `ttl_s`); the instance that was asked reports how
 * many instances heard it (`instances` in the answer), so an operator can see
 * one missing.
 */
import { followChannel, type RedisConnection, subscriberRedis } from '../store/redis.ts';
import type { RedisKeys } from '../store/redis-keys.ts';
import type { CacheFilter } from './cache-store.ts';

export class CacheInvalidations {
  readonly #publisher: RedisConnection;
  readonly #subscriber: RedisConnection;
  readonly #channel: string;
  readonly #instance: string;
  #closed = false;

  private constructor(redis: RedisConnection, keys: RedisKeys, instance: string) {
    this.#publisher = redis;
    this.#subscriber = subscriberRedis(redis);
    this.#channel = keys.cacheInvalidationChannel;
    this.#instance = instance;
  }

  /**
   * Subscribes; resolves once subscribed. `onRemote` is told each filter
   * another instance published (never this instance's own).
   */
  static async start(
    redis: RedisConnection,
    keys: RedisKeys,
    options: { instance: string; onRemote: (filter: CacheFilter) => void },
  ): Promise<CacheInvalidations> {
    const self = new CacheInvalidations(redis, keys, options.instance);
    const subscriber = self.#subscriber;
    subscriber.on('error', () => undefined);
    subscriber.on('message', (_channel: string, message: string) => {
      if (self.#closed) return;
      const filter = decode(message, self.#instance);
      if (filter !== undefined) options.onRemote(filter);
    });
    try {
      await followChannel(subscriber, self.#channel);
    } catch (error) {
      await self.close();
      throw error;
    }
    return self;
  }

  /** Tells every other instance; resolves with how many subscribers heard it (this one included). */
  async publish(filter: CacheFilter): Promise<number> {
    const message = JSON.stringify({ from: this.#instance, model: filter.model, scope: filter.scope });
    return this.#publisher.publish(this.#channel, message);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#subscriber.quit().catch(() => this.#subscriber.disconnect());
  }
}

function decode(message: string, self: string): CacheFilter | undefined {
  let value: { from?: unknown; model?: unknown; scope?: unknown };
  try {
    value = JSON.parse(message) as typeof value;
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || value.from === self) return undefined;
  const text = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);
  if (
    (value.model !== undefined && text(value.model) === undefined) ||
    (value.scope !== undefined && text(value.scope) === undefined)
  ) {
    return undefined;
  }
  return { model: text(value.model), scope: text(value.scope) };
}
