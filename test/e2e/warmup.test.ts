/**
 * Pre-warming (`warmup:`), against the mock OpenAI upstream, which counts
 * the TCP connections it accepts: the gateway opens the configured number of
 * connections per provider (per connect timeout in use) before it serves,
 * with unbilled model listings; the first real requests reuse them; the
 * keep-warm rounds reuse them too. Warm-up requests go once to each target,
 * are recorded in the ledger with route `warmup` and no key, and no key's
 * usage includes them. Off by default: nothing reaches the upstream at start.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { eventually } from '../conformance/harness.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

const UPSTREAM_KEY = 'sk-upstream-warmup-test';

function upstreamConfig(upstream: MockUpstream, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    providers: { up: { type: 'openai', base_url: upstream.baseUrl, api_key: UPSTREAM_KEY } },
    models: { fast: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }] } },
    ...extra,
  };
}

/** `count` chat requests at once through the gateway; their statuses. */
async function chats(gw: TestGateway, count: number, model = 'fast'): Promise<number[]> {
  const dispatcher = new Agent({ connections: count });
  try {
    return await Promise.all(
      Array.from({ length: count }, async () => {
        const res = await request(`${gw.baseUrl}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
          dispatcher,
        });
        await res.body.arrayBuffer();
        return res.statusCode;
      }),
    );
  } finally {
    await dispatcher.close();
  }
}

const listings = (upstream: MockUpstream) => upstream.requests.filter((r) => r.path === '/v1/models');

describe('warmup.connections', () => {
  let upstream: MockUpstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startMockUpstream({ requireApiKey: UPSTREAM_KEY });
    gw = await startTestGateway({
      config: upstreamConfig(upstream, {
        warmup: { connections: 3, keep_warm_interval_ms: 60_000 },
      }),
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  test('the pool has its connections open before the gateway serves, by unbilled model listings', () => {
    assert.equal(upstream.connections, 3);
    assert.equal(listings(upstream).length, 3);
    assert.equal(upstream.requests.length, 3);
    for (const r of listings(upstream)) {
      assert.equal(r.method, 'GET');
      assert.equal(r.status, 200, 'authenticated with the provider key');
    }
  });

  test('the first requests reuse the warm connections: no new handshake', async () => {
    assert.deepEqual(await chats(gw, 3), [200, 200, 200]);
    assert.equal(upstream.requests.filter((r) => r.path === '/v1/chat/completions').length, 3);
    assert.equal(upstream.connections, 3);
  });
});

describe('warmup keep-warm rounds', () => {
  let upstream: MockUpstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startMockUpstream({ requireApiKey: UPSTREAM_KEY });
    gw = await startTestGateway({
      config: upstreamConfig(upstream, {
        // Two connect timeouts in use: two pools, each warmed.
        models: {
          fast: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }] },
          patient: { targets: [{ provider: 'up', model: 'gpt-4o' }], timeouts: { connect_ms: 9_000 } },
        },
        warmup: { connections: 2, keep_warm_interval_ms: 20 },
      }),
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  test('each pool is warmed, and later rounds reuse its connections', async () => {
    await eventually('three more rounds', () => listings(upstream).length >= 4 * 4, { timeoutMs: 10_000 });
    // Rounds never overlap: each finds the connections the last one left idle.
    assert.equal(upstream.connections, 4);
  });
});

describe('warmup off (the default)', () => {
  test('nothing reaches the upstream at start', async () => {
    const upstream = await startMockUpstream({ requireApiKey: UPSTREAM_KEY });
    const gw = await startTestGateway({ config: upstreamConfig(upstream, {}) });
    try {
      assert.equal(upstream.connections, 0);
      assert.equal(upstream.requests.length, 0);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});

describe('warmup.requests', () => {
  let upstream: MockUpstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startMockUpstream({ requireApiKey: UPSTREAM_KEY });
    gw = await startTestGateway({
      config: upstreamConfig(upstream, {
        models: {
          fast: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }] },
          // Shares fast's target, adds one: three models' worth, two targets.
          smart: {
            targets: [
              { provider: 'up', model: 'gpt-4o' },
              { provider: 'up', model: 'gpt-4o-mini' },
            ],
          },
        },
        pricing: { 'gpt-4o-mini': { input: 1, output: 2 }, 'gpt-4o': { input: 3, output: 4 } },
        warmup: { requests: { enabled: true, prompt: 'warm up', max_tokens: 1 } },
      }),
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  test('one small chat request per target, marked in the ledger with route warmup and no key', async () => {
    const sent = await upstream.waitForRequests(2);
    const chatsSent = sent.filter((r) => r.path === '/v1/chat/completions');
    assert.deepEqual(chatsSent.map((r) => (r.body as { model: string }).model).sort(), [
      'gpt-4o',
      'gpt-4o-mini',
    ]);
    for (const r of chatsSent) {
      assert.equal((r.body as { max_tokens: number }).max_tokens, 1);
      assert.deepEqual((r.body as { messages: unknown }).messages, [{ role: 'user', content: 'warm up' }]);
    }
    const { ledger, database } = gw.gateway.context;
    await eventually('both rows queued', async () => {
      await ledger.flush();
      const rows = await database.db.selectFrom('usage_ledger').select('request_id').execute();
      return rows.length >= 2;
    });
    const rows = await database.db
      .selectFrom('usage_ledger')
      .select(['route', 'key_id', 'model_used', 'status', 'prompt_tokens', 'cost_micros'])
      .orderBy('model_used')
      .execute();
    assert.deepEqual(
      rows.map((r) => ({ route: r.route, key: r.key_id, model: r.model_used, status: r.status })),
      [
        { route: 'warmup', key: null, model: 'gpt-4o', status: 'ok' },
        { route: 'warmup', key: null, model: 'gpt-4o-mini', status: 'ok' },
      ],
    );
    // Priced like any attempt: the spend is visible, under no key.
    assert.ok(rows.every((r) => Number(r.prompt_tokens) > 0 && Number(r.cost_micros) > 0));
  });
});
