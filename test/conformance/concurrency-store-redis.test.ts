/**
 * The concurrency store suite against RedisConcurrencyStore on a real Redis:
 * each store its own connection, each case its own key prefix
 * (./redis-stores.ts), and leases short enough (200 ms) to really lapse.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RedisConcurrencyStore } from '../../src/limits/concurrency-store.ts';
import { concurrencyStoreConformance } from './concurrency-store.ts';
import { eventually } from './harness.ts';
import { redisStores } from './redis-stores.ts';

concurrencyStoreConformance('redis', async () =>
  redisStores((redis, keys) => new RedisConcurrencyStore(redis, keys, 200)),
);

test('redis: a slot never released lapses on its own (its holder crashed)', async () => {
  const stores = redisStores((redis, keys) => new RedisConcurrencyStore(redis, keys, 200));
  try {
    const store = await stores.open();
    assert.ok((await store.acquire('key:d', 1)).slot);
    assert.equal((await store.acquire('key:d', 1)).slot, undefined);
    await eventually('the lease lapsed', async () => (await store.acquire('key:d', 1)).slot !== undefined);
  } finally {
    await stores.close();
  }
});
