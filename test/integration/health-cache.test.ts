/**
 * Health endpoints and Redis: readiness does not depend on Redis, so it must
 * not touch it (a PING queued while Redis is away waits for its timeout); the
 * detailed endpoints serve the background checks' PING and report a
 * disconnected client at once. Counted on a private Redis with
 * `INFO commandstats`, no timing thresholds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { connectRedis } from '../../src/store/redis.ts';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type Service, startRedis } from '../helpers/services.ts';

/** PING calls Redis has served so far (our own INFO is not one). */
async function pingCalls(client: Redis): Promise<number> {
  const info = await client.info('commandstats');
  const match = /^cmdstat_ping:calls=(\d+)/m.exec(info);
  return match ? Number(match[1]) : 0;
}

interface HealthBody {
  status: string;
  ready: boolean;
  redis?: { ok: boolean; detail?: string };
  checks?: Record<string, { status: string }>;
}

async function health(gw: TestGateway, path: string): Promise<{ status: number; body: HealthBody }> {
  const res = await fetch(`${gw.url}${path}`);
  return { status: res.status, body: (await res.json()) as HealthBody };
}

describe('health endpoints with Redis', () => {
  let redis: Service | undefined;
  let gw: TestGateway | undefined;
  let client: Redis | undefined;

  before(async () => {
    redis = await startRedis();
    gw = await startTestGateway({ config: { storage: { redis_url: redis.url } } });
    client = connectRedis(redis.url, { name: 'health-cache-test' });
  });

  after(async () => {
    client?.disconnect();
    await gw?.close();
    await redis?.stop();
  });

  test('/health/ready never pings Redis', async () => {
    assert.ok(gw && client);
    const before = await pingCalls(client);
    for (let i = 0; i < 20; i++) {
      const { status, body } = await health(gw, '/health/ready');
      assert.equal(status, 200);
      assert.equal(body.status, 'ready');
    }
    assert.equal(await pingCalls(client), before, 'no PING for 20 readiness checks');
  });

  test('concurrent /health/deep requests send no PING: only the background checks do', async () => {
    assert.ok(gw && client);
    const checker = gw.gateway.context.health;
    const runs = checker.runs;
    const before = await pingCalls(client);
    const answers = await Promise.all(Array.from({ length: 20 }, () => health(gw!, '/health/deep')));
    for (const { status, body } of answers) {
      assert.equal(status, 200);
      assert.equal(body.checks?.['redis']?.status, 'healthy');
    }
    const pings = (await pingCalls(client)) - before;
    assert.equal(pings, checker.runs - runs, `20 concurrent deep checks sent ${pings} PINGs`);
  });

  test('with Redis stopped: ready stays 200, /health reports redis down and degraded', async () => {
    assert.ok(gw && redis);
    client?.disconnect();
    client = undefined;
    await redis.stop();

    // The gateway's client notices the closed socket on its own; wait for that, bounded.
    let last: { status: number; body: HealthBody } | undefined;
    await pollUntil(
      '/health reports Redis down',
      async () => {
        last = await health(gw!, '/health');
        return last.body.redis?.ok === false;
      },
      { attempts: 100, intervalMs: 100 },
    );
    assert.equal(last?.status, 200);
    assert.equal(last?.body.status, 'degraded');
    assert.match(last?.body.redis?.detail ?? '', /^redis \S+/);

    for (let i = 0; i < 5; i++) {
      const { status, body } = await health(gw, '/health/ready');
      assert.equal(status, 200);
      assert.equal(body.status, 'ready');
    }
  });
});
