/**
 * Two deployments sharing one Redis, told apart only by `storage.redis_prefix`:
 * a breaker opened in one is not open in the other, a key change published by
 * one is not heard by the other, and nothing either writes lands outside its
 * own prefix.
 *
 * "Not heard" is proven without waiting for silence: after the other
 * deployment's message, each side publishes one of its own and waits for it.
 * Redis delivers messages to a subscriber in the order it executed the
 * PUBLISH commands, so had the first message been delivered it would have
 * arrived before the second.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { RedisBreakerStore } from '../../src/resilience/breaker-store-redis.ts';
import { CircuitBreaker } from '../../src/resilience/circuit-breaker.ts';
import { connectRedis } from '../../src/store/redis.ts';
import { RedisKeys } from '../../src/store/redis-keys.ts';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { testRedisUrl } from '../helpers/services.ts';

const quiet = { warn: () => {}, info: () => {} };

async function keysUnder(redis: Redis, keys: RedisKeys): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', keys.pattern, 'COUNT', 1000);
    found.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return found.sort();
}

async function deleteUnder(redis: Redis, keys: RedisKeys): Promise<void> {
  const found = await keysUnder(redis, keys);
  if (found.length > 0) await redis.del(...found);
}

describe('RedisKeys', () => {
  test('the default prefix gives the names earlier versions used (rolling upgrades keep sharing)', () => {
    const keys = new RedisKeys();
    assert.deepEqual(
      [
        keys.keysChannel,
        keys.breakerChannel,
        keys.breakerState('openai/gpt-4o'),
        keys.breakerProbes('openai/gpt-4o', 7),
        keys.breakerProbeSuccesses('openai/gpt-4o', 7),
      ],
      [
        'switchyard:keys',
        'switchyard:breakers',
        'switchyard:breaker:openai/gpt-4o',
        'switchyard:breaker:openai/gpt-4o:probes:7',
        'switchyard:breaker:openai/gpt-4o:ok:7',
      ],
    );
  });

  test('refuses a prefix with spaces, control characters, no trailing colon, or too long', () => {
    for (const bad of ['', 'switchyard', 'a b:', 'tab\t:', 'é:', `${'x'.repeat(64)}:`]) {
      assert.throws(() => new RedisKeys(bad), TypeError, JSON.stringify(bad));
    }
    assert.equal(new RedisKeys(`${'x'.repeat(63)}:`).prefix.length, 64);
    assert.equal(new RedisKeys('{acme}:prod:').breakerChannel, '{acme}:prod:breakers');
  });

  test('the SCAN pattern matches only names under the prefix, glob characters included', () => {
    assert.equal(new RedisKeys('a*[b]?:').pattern, 'a\\*\\[b\\]\\?:*');
  });
});

describe('breaker stores with different prefixes on one Redis', () => {
  const redis = connectRedis(testRedisUrl());
  const tag = randomBytes(4).toString('hex');
  const blue = new RedisKeys(`blue${tag}:`);
  const green = new RedisKeys(`green${tag}:`);
  after(async () => {
    await Promise.all([deleteUnder(redis, blue), deleteUnder(redis, green)]);
    redis.disconnect();
  });

  test('opening a breaker in one does not affect the other; probes and successes are counted apart', async () => {
    const [a, b] = await Promise.all([
      RedisBreakerStore.start(redis, quiet, { keys: blue }),
      RedisBreakerStore.start(redis, quiet, { keys: green }),
    ]);
    const heardByB: string[] = [];
    b.subscribe((id, shared) => heardByB.push(`${id} ${shared.state}`));
    const options = { id: 'p/m', failureThreshold: 1, recoveryTimeoutMs: 60_000 };
    const onA = new CircuitBreaker({ ...options, store: a });
    const onB = new CircuitBreaker({ ...options, store: b });
    try {
      await onA.trip();
      assert.equal(onA.state, 'open');
      // B's own announcement comes after A's on the wire: once B hears it, A's would have arrived.
      await b.publish('p/other', { state: 'closed', epoch: 1, openUntil: 0 });
      await pollUntil('B hears its own announcement', async () => heardByB.length > 0);
      assert.deepEqual(heardByB, ['p/other closed']);
      assert.equal(onB.state, 'closed');
      assert.equal(await b.read('p/m'), undefined);
      await onB.sync();
      assert.equal(onB.state, 'closed', 'nothing to adopt under its own prefix');
      assert.equal((await a.read('p/m'))?.state, 'open');

      // Same id, same epoch, one permit each: both are granted.
      assert.equal(await a.acquireProbe('p/m', 5, 1, 60_000), true);
      assert.equal(await b.acquireProbe('p/m', 5, 1, 60_000), true);
      assert.equal(await a.probeSucceeded('p/m', 5), 1);
      assert.equal(await b.probeSucceeded('p/m', 5), 1);

      const all = [...(await keysUnder(redis, blue)), ...(await keysUnder(redis, green))];
      assert.deepEqual(all.sort(), [
        `blue${tag}:breaker:p/m`,
        `blue${tag}:breaker:p/m:ok:5`,
        `blue${tag}:breaker:p/m:probes:5`,
        `green${tag}:breaker:p/m:ok:5`,
        `green${tag}:breaker:p/m:probes:5`,
        `green${tag}:breaker:p/other`,
      ]);
    } finally {
      onA.dispose();
      onB.dispose();
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('two gateways with different prefixes on one Redis', () => {
  const tag = randomBytes(4).toString('hex');
  const prefixes = [`one${tag}:`, `two${tag}:`] as const;
  const gateways: TestGateway[] = [];
  const redis = connectRedis(testRedisUrl());
  after(async () => {
    await Promise.all(gateways.map((gw) => gw.close()));
    await Promise.all(prefixes.map((p) => deleteUnder(redis, new RedisKeys(p))));
    redis.disconnect();
  });

  test('a breaker opened and a key change published in one are not seen in the other', async () => {
    for (const redis_prefix of prefixes) {
      gateways.push(
        await startTestGateway({
          config: {
            storage: { redis_url: testRedisUrl(), redis_prefix },
            providers: { mock: { type: 'mock' } },
            models: {
              mock: {
                targets: [
                  { provider: 'mock', model: 'a' },
                  { provider: 'mock', model: 'b' },
                ],
              },
            },
          },
        }),
      );
    }
    const [one, two] = gateways.map((gw) => gw.gateway.context) as [
      TestGateway['gateway']['context'],
      TestGateway['gateway']['context'],
    ];
    const breakersHeard: string[] = [];
    two.resilience.store.subscribe((id, shared) => breakersHeard.push(`${id} ${shared.state}`));
    const keysHeard: string[] = [];
    const refresh = two.keys.refresh.bind(two.keys);
    two.keys.refresh = (id: string) => {
      keysHeard.push(id);
      return refresh(id);
    };

    await one.resilience.breaker('mock/a')!.trip();
    await one.keySync.publish('key-of-one');
    await two.resilience.breaker('mock/b')!.trip();
    await two.keySync.publish('key-of-two');
    await pollUntil(
      'two hears its own announcements',
      async () => breakersHeard.length > 0 && keysHeard.length > 0,
    );
    assert.deepEqual(breakersHeard, ['mock/b open']);
    assert.deepEqual(keysHeard, ['key-of-two']);
    assert.deepEqual(
      two.resilience.list().map((t) => `${t.id} ${t.state}`),
      ['mock/a closed', 'mock/b open'],
    );
    assert.deepEqual(
      one.resilience.list().map((t) => `${t.id} ${t.state}`),
      ['mock/a open', 'mock/b closed'],
    );
    // Everything each wrote is under its own prefix.
    assert.deepEqual(await keysUnder(redis, new RedisKeys(prefixes[0])), [`${prefixes[0]}breaker:mock/a`]);
    assert.deepEqual(await keysUnder(redis, new RedisKeys(prefixes[1])), [`${prefixes[1]}breaker:mock/b`]);
  });
});
