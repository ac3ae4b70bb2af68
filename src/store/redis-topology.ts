/**
 * Where the deployment's Redis is: one server (`storage.redis_url`), a
 * primary watched by Sentinel (`storage.redis_sentinel`, failover without a
 * configuration change) or a Redis Cluster (`storage.redis_cluster`, keys
 * spread over slots). Config allows at most one; `connectRedis` takes any.
 */
import type { Config } from '../config/schema.ts';
import { RedisKeys } from './redis-keys.ts';

export interface RedisSentinelTopology {
  /** The primary's name as the sentinels know it (`sentinel monitor <name> ...`). */
  name: string;
  /** `host:port` of each sentinel; any one answering is enough to find the primary. */
  sentinels: readonly string[];
  username?: string | undefined;
  /** The data nodes' password (the primary's and its replicas'). */
  password?: string | undefined;
  /** The sentinels' own password, when they require one. */
  sentinel_password?: string | undefined;
  db?: number | undefined;
}

export interface RedisClusterTopology {
  /** `host:port` of some cluster nodes; the rest are discovered from them. */
  nodes: readonly string[];
  username?: string | undefined;
  password?: string | undefined;
}

/** A `redis://` URL, or a Sentinel- or Cluster-managed Redis. */
export type RedisTarget = string | { sentinel: RedisSentinelTopology } | { cluster: RedisClusterTopology };

/** The target `storage` names, if any (config validation allows at most one of the three). */
export function redisTargetOf(storage: Config['storage']): RedisTarget | undefined {
  if (storage.redis_url !== undefined) return storage.redis_url;
  if (storage.redis_sentinel !== undefined) return { sentinel: storage.redis_sentinel };
  if (storage.redis_cluster !== undefined) return { cluster: storage.redis_cluster };
  return undefined;
}

/** The deployment's Redis names: its prefix, with hash tags on a cluster. */
export function redisKeysOf(storage: Config['storage']): RedisKeys {
  return new RedisKeys(storage.redis_prefix, { cluster: storage.redis_cluster !== undefined });
}

/** Redis Cluster: multi-key scripts need hash tags, SCAN and DEL go node by node. */
export function isClusterTarget(
  target: RedisTarget | undefined,
): target is { cluster: RedisClusterTopology } {
  return typeof target === 'object' && 'cluster' in target;
}

/** `host:port`, `[v6]:port`: a port between 1 and 65535 after the last colon. */
export const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

export function parseHostPort(text: string): { host: string; port: number } {
  const match = HOST_PORT.exec(text);
  const port = Number(match?.[1]);
  if (!match || !(port >= 1 && port <= 65_535)) {
    throw new TypeError(`expected host:port, got ${JSON.stringify(text)}`);
  }
  const host = text.slice(0, text.length - match[1]!.length - 1).replace(/^\[(.*)\]$/, '$1');
  return { host, port };
}

/** Safe to log: no password. */
export function describeRedisTopology(target: Exclude<RedisTarget, string>): string {
  return 'sentinel' in target
    ? `sentinel ${target.sentinel.name} via ${target.sentinel.sentinels.join(',')}`
    : `cluster via ${target.cluster.nodes.join(',')}`;
}

/** Every password of the target, to mask in error text. */
export function redisTopologySecrets(target: Exclude<RedisTarget, string>): string[] {
  const secrets =
    'sentinel' in target
      ? [target.sentinel.password, target.sentinel.sentinel_password]
      : [target.cluster.password];
  return secrets.filter((s): s is string => s !== undefined && s !== '');
}
