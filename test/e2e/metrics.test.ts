/**
 * /metrics, parsed by a Prometheus exposition-format parser: every metric the
 * issue names moves when its event happens (a request, a stream's first token,
 * tokens, cost, a cache hit and miss, a breaker opening, a rate-limit
 * rejection, a queued job, a request in flight), the process metrics are
 * there, no label carries a key or a client's model name, and with
 * `server.metrics_port` /metrics moves to its own port.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { parse as parseYaml } from 'yaml';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { ROOT, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';
import { type PromFamily, parseMetrics, seriesNames, total } from '../helpers/prometheus-text.ts';
import { metricNamesIn } from '../helpers/promql-names.ts';
import { testRedisUrl } from '../helpers/services.ts';

type Families = Map<string, PromFamily>;

async function scrape(url: string): Promise<{ text: string; families: Families }> {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { text, families: parseMetrics(text) };
}

async function post(gw: TestGateway, key: string, path: string, body: unknown) {
  const res = await fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const chat = (model: string, content: string) => ({ model, messages: [{ role: 'user', content }] });

describe('/metrics: every named metric moves with its event', () => {
  let upstream: MockUpstream;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    upstream = await startMockUpstream();
    const up = { type: 'openai', base_url: upstream.baseUrl, api_key: 'sk-upstream-metrics-test' };
    gw = await startTestGateway({
      config: {
        server: { shutdown: { grace_ms: 1_000 } },
        // Redis too: the Redis metric the alert rules use is exported only with one.
        storage: { redis_url: testRedisUrl(), redis_prefix: `metrics-${randomBytes(4).toString('hex')}:` },
        providers: {
          up,
          bad: up,
          sleepy: { type: 'mock', latency_ms: 2_000 },
        },
        models: {
          gpt: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }] },
          cached: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }], cache: { enabled: true } },
          flaky: {
            targets: [{ provider: 'bad', model: 'gpt-4o-mini' }],
            retries: { max: 0 },
            circuit_breaker: { failure_threshold: 2 },
          },
          slow: { targets: [{ provider: 'sleepy', model: 'mock-1' }] },
        },
        jobs: { queues: { heavy: { concurrency: 1 } } },
      },
    });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  test('requests, latency, tokens and cost', async () => {
    const before = (await scrape(gw.url)).families;
    await client.chat.completions.create(
      chat('gpt', 'count me') as OpenAI.ChatCompletionCreateParamsNonStreaming,
    );
    const after = (await scrape(gw.url)).families;
    const labels = { route: '/v1/chat/completions', model: 'gpt', provider: 'up', status: '200' };
    assert.equal(
      total(after, 'switchyard_requests_total', labels) - total(before, 'switchyard_requests_total', labels),
      1,
    );
    assert.equal(
      total(after, 'switchyard_request_duration_seconds', labels) -
        total(before, 'switchyard_request_duration_seconds', labels),
      1,
    );
    assert.equal(after.get('switchyard_request_duration_seconds')?.type, 'HISTOGRAM');
    for (const type of ['prompt', 'completion']) {
      const l = { provider: 'up', model: 'gpt', type };
      assert.ok(
        total(after, 'switchyard_tokens_total', l) > total(before, 'switchyard_tokens_total', l),
        type,
      );
    }
    const cost = { provider: 'up', model: 'gpt' };
    assert.ok(
      total(after, 'switchyard_cost_usd_total', cost) > total(before, 'switchyard_cost_usd_total', cost),
    );
    assert.ok(
      total(after, 'switchyard_upstream_duration_seconds', { provider: 'up', outcome: 'ok' }) >
        total(before, 'switchyard_upstream_duration_seconds', { provider: 'up', outcome: 'ok' }),
    );
  });

  test('a stream: in flight while it runs, its first token timed', async () => {
    const before = (await scrape(gw.url)).families;
    upstream.enqueue({ frames: 4, frameDelayMs: 100, path: '/chat/completions' });
    const stream = await client.chat.completions.create({
      ...chat('gpt', 'stream me'),
      stream: true,
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    const chunks = stream[Symbol.asyncIterator]();
    await chunks.next(); // the stream has begun: the request is in flight
    const during = (await scrape(gw.url)).families;
    assert.ok(total(during, 'switchyard_requests_in_flight', { route: '/v1/chat/completions' }) >= 1);
    while (!(await chunks.next()).done) {
      // drain
    }
    const after = (await scrape(gw.url)).families;
    const l = { provider: 'up', model: 'gpt' };
    assert.equal(
      total(after, 'switchyard_time_to_first_token_seconds', l) -
        total(before, 'switchyard_time_to_first_token_seconds', l),
      1,
    );
    assert.equal(total(after, 'switchyard_requests_in_flight', { route: '/v1/chat/completions' }), 0);
  });

  test('the cache: a miss, then a hit', async () => {
    const before = (await scrape(gw.url)).families;
    for (let i = 0; i < 2; i++) {
      await client.chat.completions.create(
        chat('cached', 'same question') as OpenAI.ChatCompletionCreateParamsNonStreaming,
      );
    }
    const after = (await scrape(gw.url)).families;
    const delta = (labels: Record<string, string>) =>
      total(after, 'switchyard_cache_requests_total', labels) -
      total(before, 'switchyard_cache_requests_total', labels);
    assert.equal(delta({ result: 'miss' }), 1);
    assert.equal(delta({ result: 'hit', tier: 'memory' }), 1);
  });

  test('a circuit breaker opening', async () => {
    const target = { target: 'bad/gpt-4o-mini' };
    assert.equal(total((await scrape(gw.url)).families, 'switchyard_circuit_breaker_state', target), 0);
    upstream.enqueue({ kind: 'status', status: 503 }, { kind: 'status', status: 503 });
    for (let i = 0; i < 2; i++)
      assert.equal((await post(gw, gw.masterKey, '/v1/chat/completions', chat('flaky', 'x'))).status, 503);
    assert.equal(total((await scrape(gw.url)).families, 'switchyard_circuit_breaker_state', target), 2);
  });

  test('a rate-limit rejection', async () => {
    const created = await post(gw, gw.masterKey, '/admin/keys', {
      name: 'limited',
      limits: { requests_per_minute: 1 },
    });
    const key = created.body['key'] as string;
    const before = (await scrape(gw.url)).families;
    assert.equal((await post(gw, key, '/v1/chat/completions', chat('gpt', 'one'))).status, 200);
    assert.equal((await post(gw, key, '/v1/chat/completions', chat('gpt', 'two'))).status, 429);
    const { text, families: after } = await scrape(gw.url);
    const l = { scope: 'key', limit: 'requests-minute' };
    assert.equal(
      total(after, 'switchyard_ratelimit_rejections_total', l) -
        total(before, 'switchyard_ratelimit_rejections_total', l),
      1,
    );
    assert.ok(!text.includes(key), 'a key never reaches /metrics');
  });

  test('queued jobs: the queue depth', async () => {
    // One worker slot on `heavy`, jobs that take 2 s each: one runs while the other waits.
    for (let i = 0; i < 2; i++) {
      const res = await post(gw, gw.masterKey, '/v1/jobs', {
        queue: 'heavy',
        request: chat('slow', `job ${i}`),
      });
      assert.equal(res.status, 202);
    }
    await pollUntil('one job active, one queued', async () => {
      const { families } = await scrape(gw.url);
      return (
        total(families, 'switchyard_queue_depth', { queue: 'heavy', status: 'active' }) === 1 &&
        total(families, 'switchyard_queue_depth', { queue: 'heavy', status: 'queued' }) === 1
      );
    });
    await pollUntil('the queue empties', async () => {
      const { families } = await scrape(gw.url);
      return total(families, 'switchyard_queue_depth', { queue: 'heavy' }) === 0;
    });
  });

  test('process metrics under their standard names, and no client value as a label', async () => {
    await post(gw, gw.masterKey, '/v1/chat/completions', chat('no-such-model', 'x'));
    const { text, families } = await scrape(gw.url);
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      assert.ok(families.has(name), name);
    }
    assert.ok(!text.includes('no-such-model'));
    assert.ok(!text.includes(gw.masterKey) && !text.includes('sk-upstream-metrics-test'));
    // Every family is named switchyard_* or is one of the standard process/Node ones.
    for (const name of families.keys()) assert.match(name, /^(switchyard|process|nodejs)_/);
  });
  test('the alert rules and the Grafana dashboard use only metrics this gateway exports', async () => {
    // After the traffic above every family has samples; histograms add _bucket, _sum and _count.
    const exported = seriesNames((await scrape(gw.url)).families);
    const used = new Map<string, string>();

    const rules = parseYaml(readFileSync(join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8')) as {
      groups: Array<{ name: string; rules: Array<Record<string, unknown>> }>;
    };
    const alerts = rules.groups.flatMap((g) => g.rules);
    const required = [
      'SwitchyardHighErrorRate',
      'SwitchyardHighLatencyP95',
      'SwitchyardAllProvidersDown',
      'SwitchyardBudgetBurnRateHigh',
      'SwitchyardRedisDisconnected',
      'SwitchyardQueueBacklogGrowing',
    ];
    for (const name of required)
      assert.ok(
        alerts.some((r) => r['alert'] === name),
        name,
      );
    for (const rule of alerts) {
      const where = `alert ${String(rule['alert'])}`;
      assert.equal(typeof rule['alert'], 'string', where);
      assert.equal(typeof rule['expr'], 'string', where);
      assert.match(String(rule['for']), /^\d+[smh]$/, `${where}: for`);
      assert.match(
        String((rule['labels'] as Record<string, unknown>)?.['severity']),
        /^(critical|warning|info)$/,
        where,
      );
      assert.ok(
        String((rule['annotations'] as Record<string, unknown>)?.['summary'] ?? '').length > 0,
        where,
      );
      for (const name of metricNamesIn(String(rule['expr']))) used.set(name, where);
    }

    const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/switchyard.json'), 'utf8')) as {
      uid: string;
      title: string;
      panels: Array<{ title: string; type: string; targets: Array<{ expr: string; refId: string }> }>;
      templating: { list: Array<{ name: string; type: string; query: unknown }> };
    };
    assert.equal(dashboard.uid, 'switchyard-overview');
    assert.ok(dashboard.panels.length >= 10);
    for (const panel of dashboard.panels) {
      assert.ok(panel.title && panel.type && panel.targets.length > 0, panel.title);
      for (const target of panel.targets) {
        for (const name of metricNamesIn(target.expr)) used.set(name, `panel ${panel.title}`);
      }
    }
    for (const variable of dashboard.templating.list.filter((v) => v.name !== 'datasource')) {
      const query = variable.query as { query?: string } | string;
      const text = typeof query === 'string' ? query : (query.query ?? '');
      for (const name of metricNamesIn(text.replace(/^label_values\((\w+),.*$/, '$1')))
        used.set(name, `variable ${variable.name}`);
    }

    // The names the issue asks for are all on the dashboard or in a rule.
    for (const name of [
      'switchyard_requests_total',
      'switchyard_request_duration_seconds_bucket',
      'switchyard_time_to_first_token_seconds_bucket',
      'switchyard_tokens_total',
      'switchyard_cost_usd_total',
      'switchyard_cache_requests_total',
      'switchyard_circuit_breaker_state',
      'switchyard_queue_depth',
      'switchyard_ratelimit_rejections_total',
    ]) {
      assert.ok(used.has(name), `${name} is used`);
    }
    for (const [name, where] of used)
      assert.ok(exported.has(name), `${where} uses ${name}, which the gateway does not export`);
  });
});

describe('server.metrics_port', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startTestGateway({ config: { server: { metrics_port: 0 } } });
  });
  after(() => gw?.close());

  test('/metrics is served on its own port, and not on the main one', async () => {
    const address = gw.gateway.metricsServer?.address;
    assert.ok(address !== undefined && address.port !== 0);
    const separate = `http://127.0.0.1:${address.port}`;
    await fetch(`${gw.url}/health/live`);
    const { families } = await scrape(separate);
    assert.ok(total(families, 'switchyard_requests_total', { route: '/health/live' }) >= 1);
    assert.equal((await fetch(`${gw.url}/metrics`)).status, 404);
    assert.equal((await fetch(`${separate}/v1/models`)).status, 404);
  });
});
