import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

describe('health, metrics, logs and heartbeats', () => {
  let upstream: MockUpstream;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    upstream = await startMockUpstream();
    gw = await startTestGateway({
      config: {
        server: { heartbeat_ms: 20 },
        providers: {
          up: { type: 'openai', base_url: upstream.baseUrl, api_key: 'sk-upstream-observability' },
        },
        models: { gpt: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }] } },
      },
    });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  test('/health/live, /health/ready and /health report without secrets', async () => {
    const live = await fetch(`${gw.url}/health/live`);
    assert.equal(live.status, 200);
    const ready = await fetch(`${gw.url}/health/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready' });
    const health = await fetch(`${gw.url}/health`);
    const text = await health.text();
    const body = JSON.parse(text) as {
      status: string;
      database: { ok: boolean; kind: string };
      providers: object;
    };
    assert.equal(body.status, 'ok');
    assert.deepEqual(body.database, { ok: true, kind: 'sqlite' });
    assert.ok('up' in body.providers);
    assert.ok(!text.includes('sk-upstream-observability') && !text.includes(gw.masterKey));
  });

  // Each check in detail, and the probes that hang or fail: test/integration/health-deep.test.ts.
  test('/health/deep: an overall status and one status per check, without secrets', async () => {
    const deep = await fetch(`${gw.url}/health/deep`);
    assert.equal(deep.status, 200);
    const text = await deep.text();
    const body = JSON.parse(text) as {
      status: string;
      checks: Record<string, { status: string }> & {
        providers: { providers: Record<string, { status: string }> };
      };
    };
    assert.match(body.status, /^(healthy|degraded)$/);
    assert.equal(body.checks['database']?.status, 'healthy');
    assert.equal(body.checks.providers.providers['up']?.status, 'healthy');
    for (const check of ['disk', 'memory', 'event_loop', 'cpu', 'circuit_breakers', 'queues']) {
      assert.match(body.checks[check]?.status ?? '', /^(healthy|degraded|unhealthy)$/, check);
    }
    assert.ok(!text.includes('sk-upstream-observability') && !text.includes(gw.masterKey));
  });

  test('x-request-id goes in and out, and into the access log', async () => {
    const { response } = await client.chat.completions
      .create(
        { model: 'gpt', messages: [{ role: 'user', content: 'trace me' }] },
        { headers: { 'x-request-id': 'trace-abc-123' } },
      )
      .withResponse();
    assert.equal(response.headers.get('x-request-id'), 'trace-abc-123');
    assert.equal(upstream.requests.at(-1)?.headers['x-request-id'], 'trace-abc-123');
    const generated = await fetch(`${gw.url}/health/live`);
    assert.match(generated.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const lines = readFileSync(gw.logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const access = lines.find((l) => l['requestId'] === 'trace-abc-123' && l['msg'] === 'request');
    assert.equal(access?.['status'], 200);
    assert.equal(access?.['route'], '/v1/chat/completions');
  });

  test('/metrics counts requests, tokens and latency by route, model, provider and status', async () => {
    await client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'count me' }] });
    const stream = await client.chat.completions.create({
      model: 'gpt',
      stream: true,
      messages: [{ role: 'user', content: 'stream me' }],
    });
    for await (const _ of stream) {
      // drain
    }
    await assert.rejects(
      client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    );
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(
      metrics,
      /switchyard_requests_total\{route="\/v1\/chat\/completions",model="gpt",provider="up",status="200"\} [2-9]/,
    );
    assert.match(
      metrics,
      /switchyard_requests_total\{route="\/v1\/chat\/completions",model="none",provider="none",status="404"\} 1/,
    );
    assert.match(metrics, /switchyard_tokens_total\{provider="up",model="gpt",type="completion"\} \d+/);
    assert.match(
      metrics,
      /switchyard_upstream_duration_seconds_bucket\{le="[^"]+",provider="up",model="gpt",outcome="ok"\}/,
    );
    assert.match(metrics, /switchyard_time_to_first_token_seconds_count\{provider="up",model="gpt"\} [1-9]/);
    assert.match(metrics, /switchyard_request_duration_seconds_count/);
    assert.ok(!metrics.includes('no-such-model'), 'client-supplied model names never become labels');
    assert.ok(!metrics.includes(gw.masterKey));
  });

  test('a silent stream gets SSE heartbeats', async () => {
    upstream.enqueue({ frames: 2, frameDelayMs: 150, path: '/chat/completions' });
    const res = await fetch(`${gw.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt', stream: true, messages: [{ role: 'user', content: 'slow' }] }),
    });
    const text = await res.text();
    assert.equal(res.status, 200);
    assert.match(text, /^: keep-alive$/m);
    assert.match(text, /data: \[DONE\]/);
  });
});
