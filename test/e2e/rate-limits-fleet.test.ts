/**
 * Rate limits across instances: three gateway processes sharing one Redis
 * (the windows) and one PostgreSQL database (the keys). A limit that
 * multiplies by the number of instances is a published bug in other gateways;
 * here 5,000 requests from 200 concurrent clients spread over the three admit
 * exactly the limit, for a request limit and for a token limit alike, and a
 * budget worth ten requests is spent by exactly ten of 200 racing ones. With
 * Redis out of reach, requests are admitted unlimited (said in the log) and
 * the limits come back with it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { eventually } from '../conformance/harness.ts';
import { floodChat } from '../helpers/flood.ts';
import {
  newMasterKey,
  registerSecret,
  type SpawnedGateway,
  spawnGateway,
  startTestGateway,
  type TestGateway,
} from '../helpers/gateway.ts';
import {
  createPostgresDatabase,
  type RedisService,
  startRedis,
  testPostgresUrl,
  testRedisUrl,
} from '../helpers/services.ts';

const REQUESTS = 5_000;
const CLIENTS = 200;

describe('three gateway processes sharing Redis', () => {
  const gateways: SpawnedGateway[] = [];
  const masterKey = newMasterKey();
  let spawnOptions: Parameters<typeof spawnGateway>[0];
  const keys: Record<string, string> = {};
  const keyIds: Record<string, string> = {};
  let databaseUrl = '';

  before(async () => {
    databaseUrl = await createPostgresDatabase(testPostgresUrl());
    spawnOptions = {
      masterKey,
      env: { DATABASE_URL: databaseUrl },
      // A prefix of its own: other test files share the runner's Redis.
      config: {
        storage: { redis_url: testRedisUrl(), redis_prefix: `fleet${randomBytes(4).toString('hex')}:` },
        // 1,000 micro-dollars a token: "ping" with max_tokens 1 costs $0.005, estimated and real alike.
        pricing: { 'mock-1': { input: 1_000, output: 1_000 } },
        models: {
          mock: { targets: [{ provider: 'mock', model: 'mock-1' }] },
          // The primary can take 100 requests a minute; routing sheds it at 80% (shed_at) of that.
          capped: {
            targets: [
              // Upstream models of their own: mock/mock-1 serves the other tests' floods.
              { provider: 'mock', model: 'capped-a', limits: { rpm: 100 } },
              { provider: 'mock', model: 'capped-b' },
            ],
          },
        },
      },
    };
    gateways.push(await spawnGateway(spawnOptions));
    // The keys exist before the other two start, so every instance knows them from its first request.
    for (const [name, fields] of [
      ['requests', { limits: { requests_per_minute: 1_000 } }],
      ['tokens', { limits: { tokens_per_minute: 5_000 } }],
      // Ten requests' worth.
      ['budget', { budget: { total_usd: 0.05 } }],
    ] as const) {
      const res = await fetch(`${gateways[0]!.url}/admin/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name, ...fields }),
      });
      assert.equal(res.status, 201);
      const created = (await res.json()) as { id: string; key: string };
      keys[name] = created.key;
      keyIds[name] = created.id;
      registerSecret(created.key);
    }
    gateways.push(...(await Promise.all([spawnGateway(spawnOptions), spawnGateway(spawnOptions)])));
  });
  after(async () => {
    for (const gw of gateways) gw.kill('SIGTERM');
    await Promise.all(gateways.map((gw) => gw.exited));
  });

  /** Sends `requests` requests with `key`, CLIENTS at a time, round robin over the gateways; counts the statuses. */
  async function flood(
    key: string,
    body: Record<string, unknown>,
    requests = REQUESTS,
  ): Promise<Record<number, number>> {
    return floodChat(gateways, key, body, { requests, clients: CLIENTS });
  }

  test('1,000 requests a minute: exactly 1,000 of 5,000 admitted, the rest refused with 429', async () => {
    assert.deepEqual(await flood(keys['requests']!, {}), { 200: 1_000, 429: 4_000 });
  });

  test('5,000 tokens a minute at 5 tokens a request: exactly 1,000 admitted', async () => {
    // "ping" is 4 prompt tokens to both the estimate and the mock, and max_tokens 1 gives one
    // completion token: the estimate is exact, so no correction moves the count during the flood.
    assert.deepEqual(await flood(keys['tokens']!, { max_tokens: 1 }), { 200: 1_000, 429: 4_000 });
  });

  test("a target's rpm capacity is counted fleet-wide: the secondary takes over at 80 of the shared 100", async () => {
    const served: Record<string, number> = {};
    for (let i = 0; i < 150; i++) {
      const gw = gateways[i % gateways.length]!;
      const res = await fetch(`${gw.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'capped', messages: [{ role: 'user', content: 'ping' }] }),
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      const target = res.headers.get('x-switchyard-target')!;
      served[target] = (served[target] ?? 0) + 1;
    }
    // Counted per instance, each would see 50 and never shed: the primary would serve all 150.
    // Shared, shedding starts at the fleet's 80th; an instance's view trails by the counts whose
    // replies it has not had yet (routing never waits for Redis), so a few more may slip through.
    const primary = served['mock/capped-a'] ?? 0;
    assert.ok(primary >= 80 && primary <= 95, JSON.stringify(served));
    assert.equal(served['mock/capped-b'], 150 - primary);
  });

  test('budget race: 200 concurrent requests against a budget worth 10 of them; spend never exceeds it', async () => {
    assert.deepEqual(await flood(keys['budget']!, { max_tokens: 1 }, 200), { 200: 10, 402: 190 });
    // What the ledger says was spent, once the instances' rows are written.
    let spent = { rows: 0, micros: 0 };
    await eventually('the ten rows in the ledger', async () => {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        const { rows } = await client.query<{ rows: string; micros: string | null }>(
          'select count(*) as rows, sum(cost_micros) as micros from usage_ledger where key_id = $1',
          [keyIds['budget']],
        );
        spent = { rows: Number(rows[0]!.rows), micros: Number(rows[0]!.micros ?? 0) };
      } finally {
        await client.end();
      }
      return spent.rows === 10;
    });
    assert.ok(spent.micros <= 50_000, `spent ${spent.micros} micro-dollars of a 50,000 budget`);
    assert.equal(spent.micros, 50_000);
  });
});

describe('Redis out of reach', () => {
  let redis: RedisService;
  let gw: TestGateway;
  before(async () => {
    redis = await startRedis();
    gw = await startTestGateway({ config: { storage: { redis_url: redis.url } } });
  });
  after(async () => {
    await gw.close();
    await redis.stop();
  });

  const chat = async (key: string) => {
    const res = await fetch(`${gw.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'ping' }] }),
    });
    await res.arrayBuffer();
    return { status: res.status, limited: res.headers.has('x-ratelimit-limit-requests') };
  };

  test('requests are admitted unlimited and a warning says so; the limits are back with Redis', async () => {
    const created = await fetch(`${gw.url}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'outage', limits: { requests_per_minute: 2 } }),
    });
    const { key } = (await created.json()) as { key: string };
    registerSecret(key);
    assert.deepEqual(await chat(key), { status: 200, limited: true });

    await redis.halt();
    for (let i = 0; i < 3; i++) assert.deepEqual(await chat(key), { status: 200, limited: false });
    assert.match(readFileSync(gw.logFile, 'utf8'), /limits and budgets not enforced: their store failed/);

    // A restarted Redis holds no windows: counting starts again from the first request it sees.
    await redis.resume();
    await eventually('the limit counted again', async () => (await chat(key)).limited, { timeoutMs: 10_000 });
    assert.deepEqual(await chat(key), { status: 200, limited: true });
    assert.deepEqual(await chat(key), { status: 429, limited: true });
  });
});
