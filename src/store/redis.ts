/**
 * One Redis connection factory with production defaults: commands fail fast
 * (500 ms) instead of queueing forever while Redis is away, so callers can
 * apply their own outage policy (fail open for rate limits, closed for budgets).
 */
import { createRequire } from 'node:module';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import {
  describeRedisTopology,
  parseHostPort,
  type RedisTarget,
  redisTopologySecrets,
} from './redis-topology.ts';

/**
 * A connection to the deployment's Redis: one server or a Sentinel-managed
 * primary (`Redis`), or a Redis Cluster (`Cluster`). Both take the same
 * commands; what differs (SCAN and multi-key DEL node by node, `duplicate`)
 * goes through the helpers below.
 */
export type RedisConnection = Redis | Cluster;

/**
 * ioredis is loaded on first use: a gateway without Redis (the default) never
 * pays its ~25 MB of resident memory.
 */
const requireLazily = createRequire(import.meta.url);
let ioredis: typeof import('ioredis') | undefined;
function ioredisModule(): typeof import('ioredis') {
  ioredis ??= requireLazily('ioredis') as typeof import('ioredis');
  return ioredis;
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

/**
 * Connects to `target`: a `redis://` URL, a Sentinel-managed primary (found
 * through the sentinels, and found again after a failover) or a Redis Cluster.
 */
export function connectRedis(url: string, options?: ConnectRedisOptions): Redis;
export function connectRedis(target: RedisTarget, options?: ConnectRedisOptions): RedisConnection;
export function connectRedis(target: RedisTarget, options: ConnectRedisOptions = {}): RedisConnection {
  const perConnection: RedisOptions = {
    connectionName: options.name ?? 'switchyard',
    ...(options.blocking ? {} : { commandTimeout: options.commandTimeoutMs ?? 500 }),
    connectTimeout: 2000,
    // One retry at most: a command that already timed out is not worth replaying
    // after a reconnect, the caller has moved on.
    maxRetriesPerRequest: options.blocking ? null : 1,
  };
  const { Redis: RedisClient, Cluster: ClusterClient } = ioredisModule();
  let redis: RedisConnection;
  if (typeof target === 'string') {
    redis = new RedisClient(target, { ...perConnection, ...reconnecting });
  } else if ('sentinel' in target) {
    const { sentinel } = target;
    redis = new RedisClient({
      ...perConnection,
      ...reconnecting,
      sentinels: sentinel.sentinels.map(parseHostPort),
      name: sentinel.name,
      role: 'master',
      ...(sentinel.username === undefined ? {} : { username: sentinel.username }),
      ...(sentinel.password === undefined ? {} : { password: sentinel.password }),
      ...(sentinel.sentinel_password === undefined ? {} : { sentinelPassword: sentinel.sentinel_password }),
      ...(sentinel.db === undefined ? {} : { db: sentinel.db }),
      // No `failoverDetector`: its sentinel subscriptions outlive a QUIT (ioredis
      // cleans them up only on disconnect(), and BullMQ closes with QUIT), so a
      // closed client would reconnect to the sentinels forever. It is not needed
      // for a failover: the sentinels kill the demoted primary's client
      // connections (CLIENT KILL), and a reconnect asks them for the new one.
      sentinelRetryStrategy: redisRetryDelay,
      sentinelCommandTimeout: 1000,
    });
  } else {
    const { cluster } = target;
    const clusterOptions: ClusterOptions = {
      redisOptions: {
        ...perConnection,
        ...(cluster.username === undefined ? {} : { username: cluster.username }),
        ...(cluster.password === undefined ? {} : { password: cluster.password }),
      },
      clusterRetryStrategy: redisRetryDelay,
      enableOfflineQueue: true,
      // Writes and reads on the slot's master: counters must read what was just counted.
      scaleReads: 'master',
      slotsRefreshTimeout: 2000,
      lazyConnect: false,
    };
    redis = new ClusterClient(cluster.nodes.map(parseHostPort), clusterOptions);
  }
  const description = describeRedisTarget(target);
  const secrets = typeof target === 'string' ? urlSecrets(target) : redisTopologySecrets(target);
  // ioredis emits 'error' on every failed (re)connect; an EventEmitter without
  // an 'error' listener would throw it and crash the process.
  let lastLogged = 0;
  redis.on('error', (err: Error & { code?: string }) => {
    const now = Date.now();
    // Reconnect attempts can fail many times a second; one line per 5 s is enough.
    if (now - lastLogged < 5000) return;
    lastLogged = now;
    options.logger?.warn(
      { redis: description, code: err.code, err: maskSecrets(err.message, secrets) },
      'redis error',
    );
  });
  return redis;
}

/** Reconnection of a single connection (a URL's, a Sentinel primary's). */
const reconnecting = {
  // Queue commands issued while (re)connecting; commandTimeout rejects them if
  // the connection does not come back in time, so the queue cannot grow unbounded.
  enableOfflineQueue: true,
  retryStrategy: redisRetryDelay,
  lazyConnect: false,
} satisfies RedisOptions;

/** The target, safe to log. */
export function describeRedisTarget(target: RedisTarget): string {
  return typeof target === 'string' ? describeRedisUrl(target) : describeRedisTopology(target);
}

export function isCluster(redis: RedisConnection): redis is Cluster {
  return 'nodes' in redis && typeof redis.nodes === 'function';
}

/**
 * A new connection to the same Redis with the same settings, for a subscriber
 * or a blocking reader (each needs a socket of its own); `commandTimeout`
 * overrides the per-command deadline.
 */
export function duplicateRedis(
  redis: RedisConnection,
  overrides: { commandTimeout?: number } = {},
): RedisConnection {
  if (!isCluster(redis)) return redis.duplicate(overrides);
  return redis.duplicate([], { redisOptions: { ...redis.options.redisOptions, ...overrides } });
}

/**
 * A connection of its own for a pub/sub subscriber, one that `followChannel`
 * keeps subscribed. ioredis's own re-subscribe after a reconnect sends
 * SUBSCRIBE and drops the promise: closed in the moment it reconnects (a
 * gateway stopping while Redis comes back), that promise rejects ("Connection
 * is closed.") with nobody listening, an unhandled rejection. So it is off
 * here, and followChannel subscribes again on every 'ready' instead. (A
 * Cluster's subscriber re-subscribes through its own path; left as ioredis does it.)
 */
export function subscriberRedis(redis: RedisConnection): RedisConnection {
  if (isCluster(redis)) return duplicateRedis(redis);
  return redis.duplicate({ autoResubscribe: false });
}

/**
 * Subscribes `subscriber` (from subscriberRedis) to `channel`; resolves once
 * Redis has confirmed it, and subscribes again each time the connection is
 * ready after a reconnect. A re-subscribe that fails means the connection went
 * away again; the next 'ready' subscribes once more.
 */
export async function followChannel(subscriber: RedisConnection, channel: string): Promise<void> {
  await subscriber.subscribe(channel);
  subscriber.on('ready', () => {
    subscriber.subscribe(channel).catch(() => undefined);
  });
}

/**
 * Every key matching `pattern`, a batch at a time, with the connection that
 * holds the batch: on a Cluster each master is scanned in turn (a SCAN on
 * the Cluster object would visit one node at random).
 */
export async function* scanRedis(
  redis: RedisConnection,
  pattern: string,
  count = 500,
): AsyncGenerator<{ names: string[]; node: Redis }> {
  const nodes = isCluster(redis) ? redis.nodes('master') : [redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, names] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      if (names.length > 0) yield { names, node };
      cursor = next;
    } while (cursor !== '0');
  }
}

/**
 * UNLINKs keys found by `scanRedis` on `node`; returns how many existed. On a
 * cluster node one key per command (a multi-key UNLINK across slots is refused
 * with CROSSSLOT), pipelined.
 */
export async function unlinkScanned(
  redis: RedisConnection,
  node: Redis,
  names: readonly string[],
): Promise<number> {
  if (names.length === 0) return 0;
  if (!isCluster(redis)) return node.unlink(...names);
  const pipeline = node.pipeline();
  for (const name of names) pipeline.unlink(name);
  const replies = (await pipeline.exec()) ?? [];
  let removed = 0;
  for (const [error, count] of replies) {
    if (error) throw error;
    removed += Number(count);
  }
  return removed;
}

/**
 * Throws unless the connection is ready. For commands that must not wait in
 * ioredis's offline queue (limit and budget decisions): the caller goes on
 * without Redis at once rather than after the command timeout, and a queued
 * command replayed after the reconnect cannot count a request twice.
 */
export function assertRedisReady(redis: RedisConnection): void {
  if (redis.status !== 'ready') throw new Error(`redis is ${redis.status}`);
}

/** Resolves when Redis answers PING; rejects on timeout, error or abort. */
export async function pingRedis(redis: RedisConnection, signal?: AbortSignal): Promise<void> {
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

function urlSecrets(url: string): string[] {
  try {
    const password = decodeURIComponent(new URL(url).password);
    return password === '' ? [] : [password];
  } catch {
    return [];
  }
}

function maskSecrets(text: string, secrets: readonly string[]): string {
  return secrets.reduce((masked, secret) => masked.replaceAll(secret, '***'), text);
}
