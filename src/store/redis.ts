/**
 * One Redis connection factory with production defaults: commands fail fast
 * (500 ms) instead of queueing forever while Redis is away, so callers can
 * apply their own outage policy (fail open for rate limits, closed for budgets).
 */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';

/**
 * ioredis is loaded on first use: a gateway without Redis (the default) never
 * pays its ~25 MB of resident memory.
 */
const requireLazily = createRequire(import.meta.url);
let RedisClient: typeof Redis | undefined;
function redisClass(): typeof Redis {
  RedisClient ??= (requireLazily('ioredis') as typeof import('ioredis')).Redis;
  return RedisClient;
}

export interface ConnectRedisOptions {
  /** Shown in `CLIENT LIST` and in log lines. */
  name?: string;
  /**
   * Per-command deadline; also bounds how long a command waits in the offline queue.
   * @default 500
   */
  commandTimeoutMs?: number;
  logger?: { warn(obj: object, msg: string): void };
  /**
   * For BullMQ (and any user of blocking commands): no per-command deadline (a
   * BZPOPMIN waits seconds by design) and commands are kept across reconnects
   * (`maxRetriesPerRequest: null`, which BullMQ requires of its connections).
   * @default false
   */
  blocking?: boolean;
}

/** Reconnect back-off: 50 ms doubling, capped at 2 s, with jitter so many gateways do not reconnect in step. */
export function redisRetryDelay(times: number): number {
  const base = Math.min(2000, 50 * 2 ** Math.min(times - 1, 10));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

export function connectRedis(url: string, options: ConnectRedisOptions = {}): Redis {
  const description = describeRedisUrl(url);
  const redis = new (redisClass())(url, {
    connectionName: options.name ?? 'switchyard',
    ...(options.blocking ? {} : { commandTimeout: options.commandTimeoutMs ?? 500 }),
    connectTimeout: 2000,
    // One retry at most: a command that already timed out is not worth replaying
    // after a reconnect, the caller has moved on.
    maxRetriesPerRequest: options.blocking ? null : 1,
    // Queue commands issued while (re)connecting; commandTimeout rejects them if
    // the connection does not come back in time, so the queue cannot grow unbounded.
    enableOfflineQueue: true,
    retryStrategy: redisRetryDelay,
    lazyConnect: false,
  });
  // ioredis emits 'error' on every failed (re)connect; an EventEmitter without
  // an 'error' listener would throw it and crash the process.
  let lastLogged = 0;
  redis.on('error', (err: Error & { code?: string }) => {
    const now = Date.now();
    // Reconnect attempts can fail many times a second; one line per 5 s is enough.
    if (now - lastLogged < 5000) return;
    lastLogged = now;
    options.logger?.warn(
      { redis: description, code: err.code, err: maskRedisText(err.message, url) },
      'redis error',
    );
  });
  return redis;
}

/**
 * Throws unless the connection is ready. For commands that must not wait in
 * ioredis's offline queue (limit and budget decisions): the caller goes on
 * without Redis at once rather than after the command timeout, and a queued
 * command replayed after the reconnect cannot count a request twice.
 */
export function assertRedisReady(redis: Redis): void {
  if (redis.status !== 'ready') throw new Error(`redis is ${redis.status}`);
}

/** Resolves when Redis answers PING; rejects on timeout, error or abort. */
export async function pingRedis(redis: Redis, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  const ping = redis.ping();
  if (signal === undefined) {
    await ping;
    return;
  }
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([ping, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
    // The losing ping may still reject later; it must not become unhandled.
    ping.catch(() => {});
  }
}

/** `redis://:***@host:6379/0`-style description, safe to log. */
export function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/(\/\/[^/@]*?:)[^/]*@/, '$1***@');
  }
}

function maskRedisText(text: string, url: string): string {
  try {
    const password = decodeURIComponent(new URL(url).password);
    return password === '' ? text : text.replaceAll(password, '***');
  } catch {
    return text;
  }
}
