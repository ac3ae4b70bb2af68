/**
 * Keeps every instance's key cache current.
 *
 * With Redis: a change is published on one channel and every subscriber
 * refreshes that key from the database (revocation reaches all instances in
 * well under a second).
 *
 * While that channel is down (the subscriber is not `ready`, and until a full
 * reload done after it has re-subscribed), messages are lost. Revocation is a
 * security action and must not wait for the periodic reload, so meanwhile
 * every `revocationPollMs` (2 s) this instance asks the database for keys
 * revoked since the channel went down and drops them at once. Bound: a key
 * revoked on any instance is refused here within one poll interval plus a
 * database round trip (two intervals at worst, if a full reload read the key
 * just before it was revoked). The window looks back `clockSkewMarginMs`
 * (5 min) further, because revocation times are stamped by the revoking
 * instance's clock and a message may have been lost just before the socket
 * closed. New keys and other changes still wait for the reload.
 *
 * Without Redis, or for an instance whose own channel stayed up while the
 * revoking instance lost Redis (it hears nothing and sees no outage), the
 * periodic full reload (`reloadMs`, 30 s) bounds staleness.
 */
import { followChannel, type RedisConnection, subscriberRedis } from '../store/redis.ts';
import { RedisKeys } from '../store/redis-keys.ts';
import type { KeyStore } from './key-store.ts';

export interface KeySyncLogger {
  warn(obj: object, msg: string): void;
}

export interface KeySyncOptions {
  redis?: RedisConnection | undefined;
  /** Names the channel (`<prefix>keys`); instances hear each other only with the same prefix. @default new RedisKeys() */
  redisKeys?: RedisKeys | undefined;
  /** Full reload period. @default 30_000 */
  reloadMs?: number;
  /** How often to poll for revocations while the channel is down. @default 2_000 */
  revocationPollMs?: number;
  /** How far before the outage began the revocation poll looks. @default 300_000 */
  clockSkewMarginMs?: number;
  logger: KeySyncLogger;
}

export class KeySync {
  readonly #store: KeyStore;
  readonly #publisher: RedisConnection | undefined;
  readonly #subscriber: RedisConnection | undefined;
  readonly #channel: string;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #logger: KeySyncLogger;
  readonly #marginMs: number;
  /**
   * Since when changes may have gone unheard (epoch ms). Set from the start
   * until the first subscription is confirmed and followed by a reload.
   */
  #missedSince: number | undefined;
  /** Counts channel drops, so a catch-up that began before a drop does not clear `#missedSince`. */
  #drops = 0;
  #polling = false;
  #pollFailing = false;
  #catchingUp = false;
  #closed = false;

  private constructor(store: KeyStore, options: KeySyncOptions) {
    const { logger, redis } = options;
    this.#store = store;
    this.#logger = logger;
    this.#marginMs = options.clockSkewMarginMs ?? 300_000;
    this.#publisher = redis;
    this.#channel = (options.redisKeys ?? new RedisKeys()).keysChannel;
    this.#subscriber = redis && subscriberRedis(redis);
    this.#every(options.reloadMs ?? 30_000, () => {
      store.reload().catch((error: unknown) => logger.warn({ err: error }, 'key cache reload failed'));
    });
    if (this.#subscriber) {
      this.#missedSince = Date.now();
      this.#every(options.revocationPollMs ?? 2_000, () => this.#pollTick());
    }
  }

  /** Starts syncing; resolves once subscribed (so no change published after this is missed). */
  static async start(store: KeyStore, options: KeySyncOptions): Promise<KeySync> {
    const sync = new KeySync(store, options);
    const subscriber = sync.#subscriber;
    if (subscriber) {
      // ioredis emits 'error' on every failed reconnect attempt; one line per 5 s is enough.
      let lastLogged = 0;
      subscriber.on('error', (error: unknown) => {
        const now = Date.now();
        if (now - lastLogged < 5_000) return;
        lastLogged = now;
        options.logger.warn({ err: error }, 'key sync subscriber error');
      });
      subscriber.on('message', (_channel: string, id: string) => {
        if (sync.#closed) return;
        store
          .refresh(id)
          .catch((error: unknown) => options.logger.warn({ err: error }, 'key refresh failed'));
      });
      subscriber.on('close', () => sync.#channelDown());
      // After a (re)connect we may have missed messages: catch up.
      subscriber.on('ready', () => void sync.#catchUp());
      try {
        await followChannel(subscriber, sync.#channel);
      } catch (error) {
        // Without this the timers and the reconnecting subscriber would outlive a failed start.
        await sync.close();
        throw error;
      }
    }
    return sync;
  }

  /** Tells every other instance that key `id` changed. */
  async publish(id: string): Promise<void> {
    if (!this.#publisher) return;
    try {
      await this.#publisher.publish(this.#channel, id);
    } catch (error) {
      this.#logger.warn(
        { err: error },
        'could not publish key change; other instances will see it by polling (revocations) or on reload',
      );
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    if (this.#subscriber) await this.#subscriber.quit().catch(() => this.#subscriber?.disconnect());
  }

  #every(ms: number, tick: () => void): void {
    const timer = setInterval(tick, ms);
    // Housekeeping must never keep the process alive.
    timer.unref();
    this.#timers.push(timer);
  }

  #channelDown(): void {
    this.#drops++;
    this.#missedSince ??= Date.now();
  }

  #pollTick(): void {
    if (this.#closed) return;
    // `close` may not have fired (or fired long ago); the status is the truth.
    if (this.#subscriber?.status !== 'ready') this.#channelDown();
    else if (this.#missedSince !== undefined) void this.#catchUp();
    if (this.#missedSince === undefined || this.#polling) return;
    this.#polling = true;
    this.#store
      .forgetRevokedSince(this.#missedSince - this.#marginMs)
      .then((keyIds) => {
        this.#pollFailing = false;
        if (keyIds.length > 0 && !this.#closed) {
          this.#logger.warn(
            { keyIds },
            'revoked keys found in the database while the key channel is down: refused from now on',
          );
        }
      })
      .catch((error: unknown) => {
        // Once per failure streak: the database may be down for a while, and every 2 s is noise.
        if (!this.#pollFailing && !this.#closed) {
          this.#logger.warn({ err: error }, 'revocation poll failed');
        }
        this.#pollFailing = true;
      })
      .finally(() => {
        this.#polling = false;
      });
  }

  /** Confirms the subscription, then reloads everything; only then is the channel trusted again. */
  async #catchUp(): Promise<void> {
    if (this.#catchingUp || this.#closed || !this.#subscriber) return;
    this.#catchingUp = true;
    const drops = this.#drops;
    try {
      // followChannel re-subscribes after a reconnect too; subscribing here as
      // well is harmless and resolves once Redis has confirmed it, so nothing
      // published after the reload below is missed.
      await this.#subscriber.subscribe(this.#channel);
      await this.#store.reload();
      if (drops === this.#drops) this.#missedSince = undefined;
    } catch (error) {
      if (!this.#closed) {
        this.#logger.warn({ err: error }, 'key cache catch-up after a Redis reconnect failed; will retry');
      }
    } finally {
      this.#catchingUp = false;
    }
  }
}
