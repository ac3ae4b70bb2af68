/**
 * Keeps every instance's key cache current.
 *
 * With Redis: a change is published on one channel and every subscriber
 * refreshes that key from the database (revocation reaches all instances in
 * well under a second). Without Redis, or if a message is missed while Redis
 * was away, a periodic full reload bounds staleness.
 */
import type { Redis } from 'ioredis';
import type { KeyStore } from './key-store.ts';

export const KEY_CHANNEL = 'switchyard:keys';

export interface KeySyncLogger {
  warn(obj: object, msg: string): void;
}

export class KeySync {
  readonly #publisher: Redis | undefined;
  readonly #subscriber: Redis | undefined;
  readonly #timer: NodeJS.Timeout;
  readonly #logger: KeySyncLogger;

  private constructor(store: KeyStore, logger: KeySyncLogger, reloadMs: number, redis?: Redis) {
    this.#logger = logger;
    this.#publisher = redis;
    this.#subscriber = redis?.duplicate();
    this.#timer = setInterval(() => {
      store.reload().catch((error: unknown) => logger.warn({ err: error }, 'key cache reload failed'));
    }, reloadMs);
    this.#timer.unref();
  }

  /** Starts syncing; resolves once subscribed (so no change published after this is missed). */
  static async start(
    store: KeyStore,
    options: { redis?: Redis | undefined; reloadMs?: number; logger: KeySyncLogger },
  ): Promise<KeySync> {
    const sync = new KeySync(store, options.logger, options.reloadMs ?? 30_000, options.redis);
    const subscriber = sync.#subscriber;
    if (subscriber) {
      subscriber.on('error', (error: unknown) =>
        options.logger.warn({ err: error }, 'key sync subscriber error'),
      );
      subscriber.on('message', (_channel: string, id: string) => {
        store
          .refresh(id)
          .catch((error: unknown) => options.logger.warn({ err: error }, 'key refresh failed'));
      });
      // After a reconnect we may have missed messages: reload everything.
      subscriber.on('ready', () => {
        store.reload().catch(() => {});
      });
      await subscriber.subscribe(KEY_CHANNEL);
    }
    return sync;
  }

  /** Tells every other instance that key `id` changed. */
  async publish(id: string): Promise<void> {
    if (!this.#publisher) return;
    try {
      await this.#publisher.publish(KEY_CHANNEL, id);
    } catch (error) {
      this.#logger.warn(
        { err: error },
        'could not publish key change; other instances will see it on reload',
      );
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    if (this.#subscriber) await this.#subscriber.quit().catch(() => this.#subscriber?.disconnect());
  }
}
