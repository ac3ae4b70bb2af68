/**
 * A Redis failover during traffic (`storage.redis_sentinel`): two gateway
 * processes find the primary through three real `redis-sentinel`s on
 * loopback; the primary is SIGKILLed while requests flow and the sentinels
 * promote the replica. Every request is answered meanwhile (rate limits fail
 * open while Redis is away, as documented); afterwards both gateways are on
 * the new primary, a key's rate limit goes on from the count it had before
 * the crash, and breakers' shared state (an isolation) is still there and
 * changes still reach every instance, a gateway started after the failover
 * included.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pollUntil } from '../fixtures/ops/proc.ts';
import type { SpawnedGateway } from '../helpers/gateway.ts';
import {
  assertAllAnswered,
  assertBreakersHeld,
  assertLimitHeld,
  assertReplicated,
  createKey,
  type FailoverGateways,
  isolateBreaker,
  LIMIT,
  redisConnected,
  startFailoverGateways,
  startTraffic,
  useLimitedKey,
} from '../helpers/redis-failover.ts';
import { type RedisSentinelSet, startRedisSentinelSet } from '../helpers/redis-topologies.ts';

describe('Redis Sentinel: the primary is killed during traffic', () => {
  let set: RedisSentinelSet;
  let fleet: FailoverGateways | undefined;

  before(async () => {
    set = await startRedisSentinelSet();
    fleet = await startFailoverGateways({ redis_sentinel: { name: set.name, sentinels: set.sentinels } });
  });

  after(async () => {
    await fleet?.stop();
    await set?.stop();
  });

  test('requests keep being answered; then limits and breakers hold on the promoted replica', async (t) => {
    const [a, b] = fleet!.gateways as [SpawnedGateway, SpawnedGateway];
    const trafficKey = (await createKey(a, { requests_per_hour: 1_000_000 })).key;
    const limitedKey = (await createKey(a, { requests_per_hour: LIMIT })).key;

    // Before: 4 of the limited key's 10 used, through both instances; a breaker isolated on A, seen by B.
    await useLimitedKey(a, b, limitedKey);
    await isolateBreaker(a, b);

    // What was written has reached the replica.
    await assertReplicated((await set.primary()).port);

    // Traffic on both instances, two requests in flight at all times.
    const traffic = startTraffic([
      [a, trafficKey],
      [b, trafficKey],
    ]);
    const { statuses } = traffic;
    await traffic.flows(20, 'traffic flows');

    const beforeKill = statuses.length;
    const killedAt = performance.now();
    const { from, to } = await set.failover();
    const promotedAt = performance.now();
    assert.notEqual(from.port, to.port);
    assert.equal(from.running, false);
    const atFailover = statuses.length;
    await pollUntil(
      'both gateways are on the new primary',
      async () => (await redisConnected(a)) && (await redisConnected(b)),
      {
        attempts: 400,
      },
    );
    const atRecovery = statuses.length;
    const recoveredAt = performance.now();
    await traffic.flows(20, 'traffic flows on after the recovery');
    await traffic.stop();
    assert.ok(atFailover >= 20 && statuses.length > atRecovery);
    assertAllAnswered(statuses);
    // For the record (not asserted: timings depend on the machine).
    t.diagnostic(
      `${statuses.length} requests, ${atRecovery - beforeKill} between the kill and both gateways back on Redis; ` +
        `promoted after ${Math.round(promotedAt - killedAt)} ms, reconnected after ${Math.round(recoveredAt - killedAt)} ms; ` +
        `slowest answer ${Math.round(Math.max(...traffic.durations))} ms`,
    );

    // Limits hold: the count before the crash survived; exactly 6 more across both instances.
    await assertLimitHeld(a, b, limitedKey);

    // Breakers: the isolation survived; a gateway started now reads it, and a reset on B reaches A and it.
    await assertBreakersHeld(fleet!);
  });
});
