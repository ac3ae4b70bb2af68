/**
 * A breaker transition published while an instance's subscriber connection
 * was away is not lost: pub/sub keeps nothing for an absent subscriber, so
 * the store reads the shared state back once its connections are up again.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { RedisBreakerStore } from '../../src/resilience/breaker-store-redis.ts';
import { connectRedis } from '../../src/store/redis.ts';
import { RedisKeys } from '../../src/store/redis-keys.ts';
import { eventually } from '../conformance/harness.ts';
import { testRedisUrl } from '../helpers/services.ts';

const quiet = { warn: () => {}, info: () => {} };
const redisA = connectRedis(testRedisUrl(), { name: 'resync-a' });
const redisB = connectRedis(testRedisUrl(), { name: 'resync-b' });
const admin = connectRedis(testRedisUrl(), { name: 'resync-admin' });
after(() => {
  redisA.disconnect();
  redisB.disconnect();
  admin.disconnect();
});

test('a transition published while the subscriber was disconnected reaches it after the reconnect', async () => {
  const keys = new RedisKeys(`resync${randomBytes(4).toString('hex')}:`);
  const a = await RedisBreakerStore.start(redisA, quiet, { keys });
  const b = await RedisBreakerStore.start(redisB, quiet, { keys });
  const heard: Array<{ id: string; state: string; epoch: number }> = [];
  a.subscribe((id, shared) => heard.push({ id, state: shared.state, epoch: shared.epoch }));
  try {
    // A knows the breaker (it read it once), as a gateway instance does from its start.
    assert.equal(await a.read('openai/gpt-4o'), undefined);
    // Drop every pub/sub connection (A's and B's subscribers), then publish at once:
    // the message goes out while A is not subscribed.
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await b.publish('openai/gpt-4o', { state: 'isolated', epoch: 7, openUntil: 0 });
    await eventually('A hears of the isolation', () =>
      heard.some((h) => h.id === 'openai/gpt-4o' && h.state === 'isolated' && h.epoch === 7),
    );
    // Both subscribers back on the channel before they are closed (a close mid-resubscribe
    // leaves ioredis's own resubscribe promise to reject after the test).
    await eventually('both subscribers resubscribed', async () => {
      const [, count] = (await admin.call('PUBSUB', 'NUMSUB', keys.breakerChannel)) as [string, number];
      return Number(count) === 2;
    });
  } finally {
    await a.close();
    await b.close();
  }
});
