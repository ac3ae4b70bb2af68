/**
 * Three gateway processes behind Debian's nginx running deploy/nginx/switchyard.conf,
 * sharing one Redis and one PostgreSQL database: to a client, one gateway.
 * The multi-instance checks of the limits, budget, cache and breaker tests
 * pass through the balancer (exact counts, one upstream call, one breaker);
 * a mixed streaming load sees no error; an instance killed mid-run fails only
 * the streams it was serving; a rolling restart (drain, exit, start again,
 * one instance at a time) fails nothing. And nginx's own per-client zone
 * refuses a flood in the SDKs' error shapes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { eventually } from '../conformance/harness.ts';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { createFleet, type Fleet } from '../helpers/fleet.ts';
import { floodChat } from '../helpers/flood.ts';
import { newMasterKey, registerSecret } from '../helpers/gateway.ts';
import { MixedLoad, type Outcome } from '../helpers/mixed-load.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';
import { type Nginx, startNginx } from '../helpers/nginx.ts';
import { parseMetrics, total } from '../helpers/prometheus-text.ts';
import { chat } from '../helpers/resilience.ts';
import { createPostgresDatabase, testPostgresUrl, testRedisUrl } from '../helpers/services.ts';

const INSTANCES = 3;
/** Names the instance that answered (nginx's $upstream_addr), for the tests only. */
const UPSTREAM_HEADER = 'x-test-upstream';
const UPSTREAM_KEY = 'sk-CANARY-nginx-fleet-0123456789';
registerSecret(UPSTREAM_KEY);

describe('three instances behind nginx, sharing Redis and PostgreSQL', () => {
  const masterKey = newMasterKey();
  const keys: Record<string, string> = {};
  const keyIds: Record<string, string> = {};
  let databaseUrl = '';
  let fleet: Fleet;
  let nginx: Nginx;
  let cachedUpstream: MockUpstream;
  let failing: MockUpstream;
  let healthy: MockUpstream;
  const suffix = randomBytes(4).toString('hex');

  before(async () => {
    databaseUrl = await createPostgresDatabase(testPostgresUrl());
    [cachedUpstream, failing, healthy] = await Promise.all([
      startMockUpstream(),
      startMockUpstream(),
      startMockUpstream(),
    ]);
    const provider = (m: MockUpstream) => ({ type: 'openai', base_url: m.baseUrl, api_key: UPSTREAM_KEY });
    fleet = await createFleet(INSTANCES, {
      masterKey,
      env: { DATABASE_URL: databaseUrl },
      config: {
        // A prefix of its own: other test files share the runner's Redis.
        storage: { redis_url: testRedisUrl(), redis_prefix: `nginx${suffix}:` },
        // 1,000 micro-dollars a token: "ping" with max_tokens 1 costs $0.005.
        pricing: { 'mock-1': { input: 1_000, output: 1_000 } },
        providers: {
          mock: { type: 'mock' },
          // Streams of about ten chunks 10 ms apart: several are always in flight on each instance.
          slow: { type: 'mock', stream_delay_ms: 10 },
          cachedup: provider(cachedUpstream),
          bad: provider(failing),
          good: provider(healthy),
        },
        models: {
          mock: { targets: [{ provider: 'mock', model: 'mock-1' }] },
          streaming: { targets: [{ provider: 'slow', model: 'mock-1' }] },
          cached: {
            targets: [{ provider: 'cachedup', model: 'gpt-4o-mini' }],
            retries: { max: 0 },
            cache: { enabled: true, scope: 'global' },
          },
          sticky: {
            targets: [
              { provider: 'bad', model: 'gpt-4o' },
              { provider: 'good', model: 'gpt-4o' },
            ],
            retries: { max: 0 },
            circuit_breaker: { failure_threshold: 3, recovery_timeout_ms: 600_000 },
          },
        },
      },
    });
    // The first instance alone, so the keys exist before the others load theirs.
    await fleet.start(0);
    for (const [name, fields] of [
      ['requests', { limits: { requests_per_minute: 1_000 } }],
      ['budget', { budget: { total_usd: 0.05 } }],
      ['load', {}],
    ] as const) {
      const res = await fetch(`${fleet.instance(0).url}/admin/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name, ...fields }),
      });
      assert.equal(res.status, 201);
      const created = (await res.json()) as { id: string; key: string };
      registerSecret(created.key);
      keys[name] = created.key;
      keyIds[name] = created.id;
    }
    await Promise.all([fleet.start(1), fleet.start(2)]);
    nginx = await startNginx({
      upstreamPorts: fleet.ports,
      // The floods below come from one address: the zone is shown on its own nginx at the end.
      perClientRate: 1_000_000,
      perClientBurst: 1_000_000,
      extraServerDirectives: [`add_header ${UPSTREAM_HEADER} $upstream_addr always;`],
    });
  });

  after(async () => {
    await nginx?.stop();
    await fleet?.close();
    await Promise.all([cachedUpstream?.close(), failing?.close(), healthy?.close()]);
  });

  /** Chat requests each instance has answered so far (its own /metrics, not through nginx). */
  async function servedByEach(): Promise<number[]> {
    return Promise.all(
      fleet.ports.map(async (_, i) => {
        const res = await fetch(`${fleet.instance(i).url}/metrics`);
        return total(parseMetrics(await res.text()), 'switchyard_requests_total', {
          route: '/v1/chat/completions',
        });
      }),
    );
  }

  test('a limit of 1,000 a minute admits exactly 1,000 of 5,000 requests spread by nginx', async () => {
    const before = await servedByEach();
    assert.deepEqual(await floodChat([nginx], keys['requests']!, {}, { requests: 5_000, clients: 200 }), {
      200: 1_000,
      429: 4_000,
    });
    const served = (await servedByEach()).map((n, i) => n - before[i]!);
    assert.ok(
      served.every((n) => n > 0),
      `every instance took part: ${served}`,
    );
    assert.equal(
      served.reduce((a, b) => a + b),
      5_000,
    );
  });

  test('budget race: 200 concurrent requests against a budget worth 10; exactly 10 are served and billed', async () => {
    assert.deepEqual(
      await floodChat([nginx], keys['budget']!, { max_tokens: 1 }, { requests: 200, clients: 200 }),
      {
        200: 10,
        402: 190,
      },
    );
    await eventually('the ten rows in the ledger', async () => {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        const { rows } = await client.query<{ rows: string; micros: string | null }>(
          'select count(*) as rows, sum(cost_micros) as micros from usage_ledger where key_id = $1',
          [keyIds['budget']],
        );
        return Number(rows[0]!.rows) === 10 && Number(rows[0]!.micros) === 50_000;
      } finally {
        await client.end();
      }
    });
  });

  test('the cache is one cache: 30 identical requests spread over the instances make one upstream call', async () => {
    const answered = new Set<string>();
    const caches: string[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${nginx.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keys['load']}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'cached',
          messages: [{ role: 'user', content: 'one answer for all' }],
        }),
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      caches.push(res.headers.get('x-switchyard-cache')!);
      answered.add(res.headers.get(UPSTREAM_HEADER)!);
    }
    assert.deepEqual(caches, ['miss', ...Array(29).fill('hit')]);
    assert.equal(cachedUpstream.requests.length, 1);
    assert.equal(answered.size, INSTANCES, `answered by ${[...answered]}`);
  });

  test('one breaker for the fleet: once one instance opens it, no instance sends to the target', async () => {
    const states = () =>
      Promise.all(
        fleet.ports.map(async (_, i) => {
          const res = await fetch(`${fleet.instance(i).url}/admin/breakers`, {
            headers: { authorization: `Bearer ${masterKey}` },
          });
          const body = (await res.json()) as { data: Array<{ id: string; state: string }> };
          return body.data.find((b) => b.id === 'bad/gpt-4o')?.state;
        }),
      );
    failing.setDefault({ kind: 'status', status: 500 });
    try {
      // Failures are counted by each instance (the open state is what is shared): spread by nginx,
      // the first instance to see its third opens the breaker for all, by the seventh at the latest.
      let sent = 0;
      while (!(await states()).includes('open')) {
        const r = await chat(nginx.url, keys['load']!, 'sticky', `fails ${sent++}`);
        assert.equal(r.status, 200);
        assert.equal(r.target, 'good/gpt-4o');
        assert.ok(
          failing.requests.length <= 7,
          `${failing.requests.length} requests reached the failing target`,
        );
      }
      await pollUntil('every instance sees it open', async () => (await states()).every((s) => s === 'open'));
      const reached = failing.requests.length;
      assert.ok(reached >= 3, `${reached}`);
      for (let i = 0; i < 9; i++) {
        const r = await chat(nginx.url, keys['load']!, 'sticky', `after ${i}`);
        assert.equal(r.status, 200);
        assert.equal(r.fallbackReason, 'circuit_open');
      }
      assert.equal(failing.requests.length, reached, 'no instance sent anything more to the open target');
    } finally {
      failing.setDefault(undefined);
    }
  });

  function startLoad(): MixedLoad {
    return new MixedLoad({
      baseUrl: nginx.baseUrl,
      apiKey: keys['load']!,
      model: 'streaming',
      clients: 24,
      upstreamHeader: UPSTREAM_HEADER,
    });
  }

  const describeFailures = (failures: Outcome[]) => JSON.stringify(failures.slice(0, 5), null, 1);

  test('a mixed streaming load has no error; one instance killed mid-run fails only the streams in flight on it', async (t) => {
    const load = startLoad();
    const killedIndex = 1;
    const killed = `127.0.0.1:${fleet.ports[killedIndex]}`;
    let outcomes: Outcome[] = [];
    let restartedAt = 0;
    try {
      await load.more(300);
      const beforeKill = load.outcomes.length;
      assert.deepEqual(
        load.outcomes.filter((o) => !o.ok),
        [],
        'no error with all three up',
      );
      // Killed while it is sending a stream (so at least that one is lost with it).
      await load.streaming(killed);
      assert.equal(await fleet.stop(killedIndex, 'SIGKILL'), 'SIGKILL');
      await load.more(200);
      restartedAt = performance.now();
      await fleet.start(killedIndex);
      // Back in the pool: nginx sends it requests again once its fail_timeout is over.
      await load.until((o) => o.ok && o.upstream === killed && o.headersAt! > restartedAt);
      await load.more(100);
      t.diagnostic(`${load.outcomes.length} requests so far (${beforeKill} before the kill)`);
    } finally {
      outcomes = await load.stop();
    }
    const failures = outcomes.filter((o) => !o.ok);
    t.diagnostic(`${failures.length} failed: streams in flight on the killed instance`);
    // A failure is a stream whose headers had come from the killed instance before it was restarted:
    // it was in flight there when it died. Every other request was served, by nginx's resend if need be.
    for (const failure of failures) {
      assert.equal(failure.stream, true, describeFailures(failures));
      assert.equal(failure.upstream, killed, describeFailures(failures));
      assert.ok(
        failure.headersAt !== undefined && failure.headersAt < restartedAt,
        describeFailures(failures),
      );
    }
    // At most the streams in flight on one instance of three: fewer than the clients.
    assert.ok(failures.length < 24, describeFailures(failures));
  });

  test('a rolling restart (SIGTERM, exit, start again, one instance at a time) fails no request', async (t) => {
    const load = startLoad();
    let outcomes: Outcome[] = [];
    try {
      await load.more(100);
      for (let i = 0; i < INSTANCES; i++) {
        const address = `127.0.0.1:${fleet.ports[i]}`;
        assert.equal(await fleet.restart(i), 0, `instance ${i} drained and exited cleanly`);
        const back = performance.now();
        // Serving again before the next one goes.
        await load.until((o) => o.ok && o.upstream === address && o.headersAt! > back);
      }
      await load.more(100);
    } finally {
      outcomes = await load.stop();
    }
    t.diagnostic(`${outcomes.length} requests across the restart of all ${INSTANCES} instances`);
    assert.deepEqual(
      outcomes.filter((o) => !o.ok),
      [],
    );
    assert.ok(outcomes.some((o) => o.stream) && outcomes.some((o) => !o.stream));
  });

  test("nginx's per-client zone refuses a flood before the gateways, in OpenAI's and Anthropic's shapes", async () => {
    const strict = await startNginx({ upstreamPorts: fleet.ports, perClientRate: 1, perClientBurst: 2 });
    try {
      const before = (await servedByEach()).reduce((a, b) => a + b);
      const statuses = await floodChat([strict], keys['load']!, {}, { requests: 20, clients: 20 });
      // A burst of 2 on top of 1 a second: at most three get through in this instant.
      assert.ok((statuses[200] ?? 0) >= 1 && (statuses[200] ?? 0) <= 3, JSON.stringify(statuses));
      assert.equal((statuses[200] ?? 0) + (statuses[429] ?? 0), 20, JSON.stringify(statuses));
      const served = (await servedByEach()).reduce((a, b) => a + b) - before;
      assert.equal(served, statuses[200], 'the refused ones never reached an instance');

      const openai = await fetch(`${strict.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keys['load']}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(openai.status, 429);
      assert.equal(openai.headers.get('retry-after'), '1');
      assert.deepEqual(
        ((await openai.json()) as { error: { code: string } }).error.code,
        'rate_limit_exceeded',
      );
      const anthropic = await fetch(`${strict.baseUrl}/messages`, {
        method: 'POST',
        headers: { 'x-api-key': keys['load']!, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(anthropic.status, 429);
      assert.deepEqual(await anthropic.json(), {
        type: 'error',
        error: { type: 'rate_limit_error', message: 'Too many requests from this address' },
      });
    } finally {
      await strict.stop();
    }
  });
});
