/**
 * A conformance harness's Redis side, for stores that each instance opens on
 * its own connection (as separate gateway instances do): every store a case
 * opens gets a new connection, ready before use (the limit stores refuse to
 * queue a decision while Redis is not ready), all under one key prefix of the
 * case's own, whose keys are deleted when the case closes.
 *
 * The Redis is the runner's (TEST_REDIS_URL) unless `target` names another:
 * a Sentinel-managed primary or a Cluster (redis-topologies.test.ts), where
 * `cluster` also turns on the names' hash tags, as the gateway does.
 */
import { randomBytes } from 'node:crypto';
import { connectRedis, type RedisConnection, scanRedis, unlinkScanned } from '../../src/store/redis.ts';
import { RedisKeys } from '../../src/store/redis-keys.ts';
import type { RedisTarget } from '../../src/store/redis-topology.ts';
import { testRedisUrl } from '../helpers/services.ts';

const run = randomBytes(4).toString('hex');
let counter = 0;

export interface RedisStoresOptions {
  /** @default the runner's TEST_REDIS_URL */
  target?: RedisTarget;
}

/** A new key prefix, unique to this run and case. */
export function caseKeys(target: RedisTarget | undefined): RedisKeys {
  return new RedisKeys(`conformance${run}-${++counter}:`, {
    cluster: typeof target === 'object' && 'cluster' in target,
  });
}

/** Deletes every key under `keys`' prefix (on a cluster, on every master). */
export async function deleteUnder(redis: RedisConnection, keys: RedisKeys): Promise<void> {
  for await (const { names, node } of scanRedis(redis, keys.pattern)) await unlinkScanned(redis, node, names);
}

export function redisStores<S>(
  build: (redis: RedisConnection, keys: RedisKeys) => S,
  options: RedisStoresOptions = {},
): {
  open: () => Promise<S>;
  close: () => Promise<void>;
} {
  const target = options.target ?? testRedisUrl();
  const keys = caseKeys(target);
  const connections: RedisConnection[] = [];
  return {
    open: async () => {
      const redis = connectRedis(target);
      connections.push(redis);
      await redis.ping();
      return build(redis, keys);
    },
    close: async () => {
      const [first] = connections;
      if (first !== undefined) await deleteUnder(first, keys);
      for (const redis of connections) redis.disconnect();
    },
  };
}
