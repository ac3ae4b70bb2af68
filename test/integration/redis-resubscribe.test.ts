/**
 * A pub/sub subscriber (key sync, breaker store, cache invalidations) stays
 * subscribed across a reconnect, and one closed in the moment it reconnects
 * (a gateway stopping while Redis comes back) leaves no unhandled rejection
 * behind: ioredis's own re-subscribe drops its SUBSCRIBE's promise, which then
 * rejects with "Connection is closed." (seen once as a file-level failure of
 * test/e2e/cache.test.ts after its Redis outage test).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { connectRedis, followChannel, type RedisConnection, subscriberRedis } from '../../src/store/redis.ts';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { testRedisUrl } from '../helpers/services.ts';

/** Drops `subscriber`'s connection from the server's side, as a Redis restart or a network cut does. */
async function cut(admin: RedisConnection, subscriber: RedisConnection, id: number): Promise<void> {
  const closed = once(subscriber, 'close');
  assert.equal(await admin.client('KILL', 'ID', String(id)), 1);
  await closed;
}

describe('Redis pub/sub subscribers across a reconnect', () => {
  let admin: RedisConnection;
  /** What the subscribers are duplicated from (as the gateway's own connection is). */
  let base: RedisConnection;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  before(() => {
    admin = connectRedis(testRedisUrl());
    base = connectRedis(testRedisUrl());
    process.on('unhandledRejection', onUnhandled);
  });
  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    await Promise.all([admin.quit(), base.quit()]);
  });

  test('hears the channel again once reconnected', async () => {
    const channel = `resubscribe-${randomBytes(4).toString('hex')}`;
    const subscriber = subscriberRedis(base);
    try {
      const id = Number(await subscriber.client('ID'));
      const heard: string[] = [];
      subscriber.on('message', (_channel: string, message: string) => heard.push(message));
      await followChannel(subscriber, channel);
      assert.equal(await admin.publish(channel, 'before'), 1);
      await pollUntil('the first message heard', async () => heard.includes('before'));

      const ready = once(subscriber, 'ready');
      await cut(admin, subscriber, id);
      await ready;
      // Subscribed again once Redis counts a listener on the channel.
      await pollUntil('subscribed again', async () => (await admin.publish(channel, 'after')) === 1, {
        attempts: 200,
        intervalMs: 10,
      });
      await pollUntil('a message after the reconnect heard', async () => heard.includes('after'));
    } finally {
      subscriber.disconnect();
    }
  });

  test('closed in the moment it reconnects, it leaves no rejection unhandled', async () => {
    const channel = `resubscribe-${randomBytes(4).toString('hex')}`;
    const subscriber = subscriberRedis(base);
    const id = Number(await subscriber.client('ID'));
    await followChannel(subscriber, channel);
    // Closed in the 'ready' event, before a re-subscribe can be answered: the
    // socket goes at once, so what was sent on it is never replied to.
    subscriber.once('ready', () => {
      subscriber.disconnect();
      (subscriber as Redis).stream.destroy();
    });
    const ended = once(subscriber, 'end');
    await cut(admin, subscriber, id);
    await ended;
    // A dropped promise rejects in the turns after the close; give them two.
    await new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
    assert.deepEqual(
      unhandled.map((reason) => (reason instanceof Error ? reason.message : String(reason))),
      [],
    );
  });
});
