/**
 * /health/deep tells the truth about each dependency: a provider that hangs,
 * Redis stopped, PostgreSQL stopped, and each coming back, on private servers;
 * /health/live answers 200 throughout. Then a probe storm: 1,000 probes of every
 * health endpoint send no command to Redis and no statement to PostgreSQL
 * (counted on the servers: `INFO commandstats`, `pg_stat_statements`), because
 * the endpoints serve the background checks' last results.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import pg from 'pg';
import { connectRedis } from '../../src/store/redis.ts';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';
import { type PostgresService, type RedisService, startPostgres, startRedis } from '../helpers/services.ts';

interface Check {
  status: string;
  [detail: string]: unknown;
}

interface Deep {
  status: string;
  ready: boolean;
  checked_at: string | null;
  checks: Record<string, Check>;
}

async function deep(gw: TestGateway): Promise<{ code: number; body: Deep }> {
  const res = await fetch(`${gw.url}/health/deep`);
  return { code: res.status, body: (await res.json()) as Deep };
}

async function code(gw: TestGateway, path: string): Promise<number> {
  const res = await fetch(`${gw.url}${path}`);
  await res.arrayBuffer();
  return res.status;
}

/** Polls /health/deep until `until` holds; returns that answer. */
async function deepUntil(gw: TestGateway, what: string, until: (body: Deep) => boolean) {
  let last: { code: number; body: Deep } | undefined;
  await pollUntil(
    what,
    async () => {
      last = await deep(gw);
      return until(last.body);
    },
    { attempts: 200, intervalMs: 50 },
  );
  return last!;
}

const providerCheck = (body: Deep, name: string) =>
  (body.checks['providers']!['providers'] as Record<string, Check & { probe: Check }>)[name]!;

describe('/health/deep with dependencies failing', () => {
  let redis: RedisService;
  let postgres: PostgresService;
  let upstream: MockUpstream;
  let gw: TestGateway;

  before(async () => {
    [redis, postgres, upstream] = await Promise.all([startRedis(), startPostgres(), startMockUpstream()]);
    gw = await startTestGateway({
      databaseUrl: postgres.url,
      config: {
        storage: { redis_url: redis.url },
        health: { interval_ms: 100, timeout_ms: 400, provider_probe_interval_ms: 100 },
        jobs: { workers: false },
        providers: {
          up: { type: 'openai', base_url: upstream.baseUrl, api_key: 'sk-upstream-health-deep' },
          local: { type: 'mock' },
        },
        models: {
          gpt: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }] },
          mock: { targets: [{ provider: 'local', model: 'mock-1' }] },
        },
      },
    });
  });

  after(async () => {
    await gw?.close();
    await Promise.all([redis?.stop(), postgres?.stop(), upstream?.close()]);
  });

  test('all up: every check healthy, with details', async () => {
    const { code: status, body } = await deepUntil(
      gw,
      'all healthy, providers probed',
      (b) => b.status === 'healthy' && providerCheck(b, 'up').probe['result'] === 'ok',
    );
    assert.equal(status, 200);
    assert.equal(body.ready, true);
    for (const name of [
      'database',
      'redis',
      'disk',
      'memory',
      'event_loop',
      'cpu',
      'providers',
      'circuit_breakers',
      'queues',
    ]) {
      assert.equal(body.checks[name]?.status, 'healthy', `${name}: ${JSON.stringify(body.checks[name])}`);
    }
    assert.equal(body.checks['database']?.['kind'], 'postgres');
    assert.ok((body.checks['disk']?.['free_bytes'] as number) > 0);
    assert.ok((body.checks['memory']?.['heap_limit_bytes'] as number) > 0);
    assert.equal(typeof body.checks['event_loop']?.['p99_ms'], 'number');
    assert.ok('fast' in (body.checks['queues']!['queues'] as object));
    // The OpenAI-type provider is probed by listing models (unbilled).
    assert.equal(providerCheck(body, 'up').probe['result'], 'ok');
    assert.ok(upstream.requests.some((r) => r.path.endsWith('/models')));
    assert.ok(!upstream.requests.some((r) => r.path.endsWith('/chat/completions')), 'no billed call');
    const text = JSON.stringify(body);
    assert.ok(!text.includes('sk-upstream-health-deep') && !text.includes(postgres.password));
  });

  test('a hanging provider: unhealthy (timed out), the instance degraded and still ready', async () => {
    upstream.setDefault({ kind: 'hang' });
    const { code: status, body } = await deepUntil(
      gw,
      'provider up unhealthy',
      (b) => providerCheck(b, 'up').status === 'unhealthy',
    );
    assert.equal(providerCheck(body, 'up').probe['result'], 'timed out');
    assert.equal(providerCheck(body, 'local').status, 'healthy');
    assert.equal(body.checks['providers']?.status, 'degraded');
    assert.equal(body.status, 'degraded');
    assert.equal(status, 200);
    assert.equal(await code(gw, '/health/live'), 200);
    assert.equal(await code(gw, '/health/ready'), 200);
    upstream.setDefault(undefined);
    await deepUntil(gw, 'provider up healthy again', (b) => providerCheck(b, 'up').status === 'healthy');
  });

  test('Redis stopped: redis unhealthy, the instance degraded, ready and live stay 200', async () => {
    await redis.halt();
    const { code: status, body } = await deepUntil(
      gw,
      'redis unhealthy',
      (b) => b.checks['redis']?.status === 'unhealthy',
    );
    assert.match(String(body.checks['redis']?.['error']), /^redis \S+/);
    assert.equal(body.status, 'degraded');
    assert.equal(status, 200);
    assert.equal(await code(gw, '/health/live'), 200);
    assert.equal(await code(gw, '/health/ready'), 200);
    await redis.resume();
    await deepUntil(gw, 'redis healthy again', (b) => b.checks['redis']?.status === 'healthy');
  });

  test('PostgreSQL stopped: database unhealthy, the instance unhealthy and not ready, live stays 200', async () => {
    await postgres.halt();
    const { code: status, body } = await deepUntil(
      gw,
      'database unhealthy',
      (b) => b.checks['database']?.status === 'unhealthy',
    );
    assert.equal((body.checks['database']!['primary'] as Check).status, 'unhealthy');
    assert.equal(body.status, 'unhealthy');
    assert.equal(body.ready, false);
    assert.equal(status, 503);
    assert.equal(await code(gw, '/health/ready'), 503);
    assert.equal(await code(gw, '/health/live'), 200);
    assert.ok(!JSON.stringify(body).includes(postgres.password));
    await postgres.resume();
    await deepUntil(gw, 'database healthy again', (b) => b.checks['database']?.status === 'healthy');
    assert.equal(await code(gw, '/health/ready'), 200);
  });
});

/** Calls Redis has served so far, by command (our own INFO left out). */
async function redisCalls(client: Redis): Promise<number> {
  const info = await client.info('commandstats');
  let total = 0;
  for (const match of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) {
    if (match[1] !== 'info') total += Number(match[2]);
  }
  return total;
}

/**
 * Statements PostgreSQL has run so far (our own queries left out): all, the
 * `select 1` pings among them, and the key store's periodic full reloads
 * (every 30 s, the one other background reader of an idle gateway).
 */
async function pgStatements(
  client: pg.Client,
): Promise<{ total: number; pings: number; keyReloads: number }> {
  const { rows } = await client.query<{ query: string; calls: string }>(
    `select query, calls from pg_stat_statements where query not like '%pg_stat_statements%'`,
  );
  let total = 0;
  let pings = 0;
  let keyReloads = 0;
  for (const row of rows) {
    total += Number(row.calls);
    if (/^select \$?1$/i.test(row.query.trim())) pings += Number(row.calls);
    if (/"(virtual_keys|teams)"/.test(row.query)) keyReloads += Number(row.calls);
  }
  return { total, pings, keyReloads };
}

describe('a probe storm', () => {
  let redis: RedisService;
  let postgres: PostgresService;
  let gw: TestGateway;
  let redisClient: Redis;
  let pgClient: pg.Client;

  before(async () => {
    [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
    // pg_stat_statements counts every statement as it ends (no stats-flush delay): loaded at server start.
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    await admin.query(`alter system set shared_preload_libraries = 'pg_stat_statements'`);
    await admin.end();
    await postgres.halt();
    await postgres.resume();
    pgClient = new pg.Client({ connectionString: postgres.url });
    await pgClient.connect();
    await pgClient.query('create extension if not exists pg_stat_statements');
    gw = await startTestGateway({
      databaseUrl: postgres.url,
      config: {
        storage: { redis_url: redis.url },
        // One background run (at start) in this test's time: the storm's count must be zero.
        health: { interval_ms: 3_600_000 },
        jobs: { workers: false },
      },
    });
    redisClient = connectRedis(redis.url, { name: 'probe-storm-counter' });
  });

  after(async () => {
    redisClient?.disconnect();
    await pgClient?.end();
    await gw?.close();
    await Promise.all([redis?.stop(), postgres?.stop()]);
  });

  test('1,000 probes: no Redis command, no database statement; a background run sends its own', async () => {
    const health = gw.gateway.context.health;
    // The first run is done (a deep probe waits for it): Redis and the database answered it.
    const first = (await deep(gw)).body;
    assert.equal(first.checks['redis']?.status, 'healthy');
    assert.equal(first.checks['database']?.status, 'healthy');
    const runs = health.runs;
    const redisBefore = await redisCalls(redisClient);
    const pgBefore = await pgStatements(pgClient);
    const paths = ['/health/live', '/health/ready', '/health/deep', '/health'];
    for (let i = 0; i < 1_000; i += 50) {
      const codes = await Promise.all(
        Array.from({ length: 50 }, (_, j) => code(gw, paths[(i + j) % paths.length]!)),
      );
      assert.ok(codes.every((c) => c === 200));
    }
    assert.equal(health.runs, runs, 'no background run during the storm');
    const redisAfter = await redisCalls(redisClient);
    const pgAfter = await pgStatements(pgClient);
    assert.equal(redisAfter - redisBefore, 0, 'Redis commands during 1,000 probes');
    assert.equal(pgAfter.pings - pgBefore.pings, 0, 'database pings during 1,000 probes');
    // A key reload may fall in the storm's second or two; nothing else may.
    assert.equal(
      pgAfter.total - pgBefore.total - (pgAfter.keyReloads - pgBefore.keyReloads),
      0,
      'database statements during 1,000 probes, key reloads aside',
    );

    // The counters do see the checks: one background run pings each once.
    await health.run();
    assert.equal((await redisCalls(redisClient)) - redisAfter, 1, 'one PING per run');
    assert.equal((await pgStatements(pgClient)).pings - pgAfter.pings, 1, 'one database ping per run');
  });
});
