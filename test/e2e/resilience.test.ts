/**
 * Retries, fallback, circuit breakers and the retry budget, end to end:
 * a real gateway in front of fault-injecting mock upstreams.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockBehaviour, type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';
import { chat, closedPort, ledgerRows, metricValue } from '../helpers/resilience.ts';

const apiKey = 'sk-CANARY-resilience-0123456789';
registerSecret(apiKey);

function provider(upstream: MockUpstream | string) {
  const base = typeof upstream === 'string' ? upstream : upstream.baseUrl;
  return { type: 'openai', base_url: base, api_key: apiKey };
}

describe('fallback for every fault kind', () => {
  let bad: MockUpstream;
  let good: MockUpstream;
  let gw: TestGateway;

  before(async () => {
    [bad, good] = await Promise.all([startMockUpstream(), startMockUpstream()]);
    const port = await closedPort();
    gw = await startTestGateway({
      config: {
        providers: {
          bad: provider(bad),
          good: provider(good),
          refused: provider(`http://127.0.0.1:${port}/v1`),
        },
        models: {
          pair: {
            targets: [
              { provider: 'bad', model: 'gpt-4o-mini' },
              { provider: 'good', model: 'gpt-4o-mini' },
            ],
            timeouts: { first_byte_ms: 300, total_ms: 5_000 },
            // This suite is about fallback per fault; retries and the breaker are tested below.
            retries: { max: 0 },
            circuit_breaker: { enabled: false },
          },
          nowhere: {
            targets: [
              { provider: 'refused', model: 'gpt-4o-mini' },
              { provider: 'good', model: 'gpt-4o' },
            ],
          },
        },
      },
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([bad.close(), good.close()]);
  });

  const faults: Array<[string, MockBehaviour, string]> = [
    ['500', { kind: 'status', status: 500 }, 'upstream_error'],
    ['502', { kind: 'status', status: 502 }, 'upstream_error'],
    ['503', { kind: 'status', status: 503 }, 'upstream_overloaded'],
    ['529', { kind: 'status', status: 529 }, 'upstream_overloaded'],
    ['429', { kind: 'rateLimit', retryAfterSeconds: 60 }, 'upstream_rate_limited'],
    ['hang past first_byte_ms', { kind: 'hang' }, 'upstream_timeout'],
    ['connection reset', { kind: 'reset' }, 'upstream_connect_failed'],
    ['malformed JSON', { kind: 'malformedJson' }, 'upstream_bad_response'],
  ];
  for (const [name, behaviour, code] of faults) {
    test(`${name} → answered by the next target`, async () => {
      bad.reset();
      good.reset();
      bad.enqueue(behaviour);
      const result = await chat(gw.url, gw.masterKey, 'pair', `fault ${name}`);
      assert.equal(result.status, 200, JSON.stringify(result.body));
      assert.equal(result.target, 'good/gpt-4o-mini');
      assert.equal(result.attempts, 2);
      // Resets surface as either a connect failure or a bad response, depending on timing in the socket.
      if (name === 'connection reset') {
        assert.match(result.fallbackReason ?? '', /^upstream_(connect_failed|bad_response|error)$/);
      } else {
        assert.equal(result.fallbackReason, code);
      }
      assert.equal(bad.requests.length, 1);
      assert.equal(good.requests.length, 1);
    });
  }

  test('connection refused → answered by the next target; the SDK sees the headers', async () => {
    good.reset();
    const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
    const { data, response } = await client.chat.completions
      .create({ model: 'nowhere', messages: [{ role: 'user', content: 'anyone?' }] })
      .withResponse();
    assert.equal(data.choices[0]?.message.content, 'Echo: anyone?');
    assert.equal(response.headers.get('x-switchyard-target'), 'good/gpt-4o');
    assert.equal(response.headers.get('x-switchyard-attempts'), '2');
    assert.equal(response.headers.get('x-switchyard-fallback-reason'), 'upstream_connect_failed');
  });

  test('no fallback header when the first target answers', async () => {
    bad.reset();
    const result = await chat(gw.url, gw.masterKey, 'pair');
    assert.equal(result.status, 200);
    assert.equal(result.target, 'bad/gpt-4o-mini');
    assert.equal(result.attempts, 1);
    assert.equal(result.fallbackReason, null);
  });

  test('a stream whose first target fails before the first chunk falls back too', async () => {
    bad.reset();
    good.reset();
    bad.enqueue({ kind: 'status', status: 500 });
    const result = await chat(gw.url, gw.masterKey, 'pair', 'stream me', { stream: true });
    assert.equal(result.status, 200);
    assert.equal(result.target, 'good/gpt-4o-mini');
    assert.equal(result.fallbackReason, 'upstream_error');
  });

  test('a client error is final: no fallback, the upstream status is kept', async () => {
    bad.reset();
    good.reset();
    bad.enqueue({ kind: 'status', status: 400 });
    const result = await chat(gw.url, gw.masterKey, 'pair');
    assert.equal(result.status, 400);
    assert.equal(result.attempts, 1);
    assert.equal(good.requests.length, 0);
  });
});

describe('one hung target of three', () => {
  let hung: MockUpstream;
  let b: MockUpstream;
  let c: MockUpstream;
  let gw: TestGateway;

  before(async () => {
    [hung, b, c] = await Promise.all([startMockUpstream(), startMockUpstream(), startMockUpstream()]);
    hung.setDefault({ kind: 'hang' });
    gw = await startTestGateway({
      config: {
        providers: { hung: provider(hung), b: provider(b), c: provider(c) },
        models: {
          trio: {
            targets: [
              { provider: 'hung', model: 'gpt-4o-mini' },
              { provider: 'b', model: 'gpt-4o-mini' },
              { provider: 'c', model: 'gpt-4o-mini' },
            ],
            timeouts: { first_byte_ms: 200 },
            retries: { max: 2 },
            circuit_breaker: { failure_threshold: 5 },
          },
        },
      },
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([hung.close(), b.close(), c.close()]);
  });

  test('20 concurrent requests all get their answer from another target; the hung attempts end as timeouts', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => chat(gw.url, gw.masterKey, 'trio', `request ${i}`)),
    );
    for (const r of results) {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.target, 'b/gpt-4o-mini');
      // Either it tried the hung target once and moved on, or the breaker had already opened.
      if (r.fallbackReason === 'upstream_timeout') assert.equal(r.attempts, 2);
      else assert.deepEqual([r.fallbackReason, r.attempts], ['circuit_open', 1]);
    }
    const rows = await ledgerRows(gw);
    const hungRows = rows.filter((row) => row.provider === 'hung');
    assert.ok(hungRows.length >= 1);
    // A timeout moves on to the next target instead of retrying the hung one.
    assert.ok(hungRows.every((row) => row.status === 'timeout' && row.error_code === 'upstream_timeout'));
    assert.equal(hungRows.length, hung.requests.length);
    assert.equal(c.requests.length, 0);
  });
});

describe('circuit breaker', () => {
  let flaky: MockUpstream;
  let backup: MockUpstream;
  let gw: TestGateway;

  before(async () => {
    [flaky, backup] = await Promise.all([startMockUpstream(), startMockUpstream()]);
    gw = await startTestGateway({
      config: {
        providers: { flaky: provider(flaky), backup: provider(backup) },
        models: {
          guarded: {
            targets: [
              { provider: 'flaky', model: 'gpt-4o-mini' },
              { provider: 'backup', model: 'gpt-4o-mini' },
            ],
            // One upstream call per request, so the counts below are the breaker's alone.
            retries: { max: 0 },
            circuit_breaker: { failure_threshold: 3, recovery_timeout_ms: 600_000 },
          },
          alone: {
            targets: [{ provider: 'flaky', model: 'gpt-4o' }],
            retries: { max: 0 },
            circuit_breaker: { failure_threshold: 2, recovery_timeout_ms: 600_000 },
          },
        },
      },
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([flaky.close(), backup.close()]);
  });

  test('opens after N failures; the target then receives nothing and requests go to the backup', async () => {
    flaky.setDefault({ kind: 'status', status: 500 });
    const results = [];
    for (let i = 0; i < 10; i++) results.push(await chat(gw.url, gw.masterKey, 'guarded', `r${i}`));
    assert.ok(results.every((r) => r.status === 200 && r.target === 'backup/gpt-4o-mini'));
    assert.equal(flaky.requests.length, 3, 'exactly failure_threshold requests reached the failing target');
    assert.deepEqual(
      results.map((r) => r.fallbackReason),
      [...Array(3).fill('upstream_error'), ...Array(7).fill('circuit_open')],
    );
    assert.equal(await metricValue(gw, 'switchyard_circuit_breaker_state{target="flaky/gpt-4o-mini"}'), 2);
    assert.equal(await metricValue(gw, 'switchyard_circuit_breaker_state{target="backup/gpt-4o-mini"}'), 0);
  });

  test('admin lists breakers (master key only) and a reset closes one', async () => {
    const denied = await fetch(`${gw.url}/admin/breakers`);
    assert.equal(denied.status, 401);
    const auth = { authorization: `Bearer ${gw.masterKey}` };
    const list = (await (await fetch(`${gw.url}/admin/breakers`, { headers: auth })).json()) as {
      data: Array<{ id: string; state: string }>;
    };
    assert.equal(list.data.find((b) => b.id === 'flaky/gpt-4o-mini')?.state, 'open');

    const deep = (await (await fetch(`${gw.url}/health/deep`)).json()) as {
      targets: Array<{ id: string; state: string; provider_ready: boolean }>;
    };
    assert.equal(deep.targets.find((t) => t.id === 'flaky/gpt-4o-mini')?.state, 'open');
    assert.ok(!JSON.stringify(deep).includes(apiKey), 'no secrets in /health/deep');

    const missing = await fetch(`${gw.url}/admin/breakers/${encodeURIComponent('nope/x')}/reset`, {
      method: 'POST',
      headers: auth,
    });
    assert.equal(missing.status, 404);
    const reset = await fetch(`${gw.url}/admin/breakers/${encodeURIComponent('flaky/gpt-4o-mini')}/reset`, {
      method: 'POST',
      headers: auth,
    });
    assert.equal(reset.status, 200);
    assert.deepEqual(await reset.json(), { id: 'flaky/gpt-4o-mini', state: 'closed' });

    flaky.setDefault(undefined);
    const before = flaky.requests.length;
    const result = await chat(gw.url, gw.masterKey, 'guarded');
    assert.equal(result.target, 'flaky/gpt-4o-mini');
    assert.equal(flaky.requests.length, before + 1);
  });

  test('every breaker open → 503 with retry-after, nothing sent; readiness fails only then', async () => {
    flaky.setDefault({ kind: 'status', status: 503 });
    for (let i = 0; i < 2; i++) assert.equal((await chat(gw.url, gw.masterKey, 'alone')).status, 503);
    const sent = flaky.requests.length;
    const result = await chat(gw.url, gw.masterKey, 'alone');
    assert.equal(result.status, 503);
    assert.equal(result.body.error?.code, 'upstream_unavailable');
    assert.equal(result.body.error?.type, 'service_unavailable');
    assert.equal(result.attempts, 0);
    assert.ok(Number(result.retryAfter) > 0);
    assert.equal(flaky.requests.length, sent);
    // Another model's targets (backup) can still serve.
    assert.equal((await fetch(`${gw.url}/health/ready`)).status, 200);

    flaky.setDefault({ kind: 'status', status: 500 });
    await fetch(`${gw.url}/admin/breakers/${encodeURIComponent('flaky/gpt-4o-mini')}/reset`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.masterKey}` },
    });
    for (let i = 0; i < 3; i++) await chat(gw.url, gw.masterKey, 'guarded');
    // backup is still closed: one target can serve, so the gateway stays ready.
    assert.equal((await fetch(`${gw.url}/health/ready`)).status, 200);
    await gw.gateway.context.resilience.breaker('backup/gpt-4o-mini')!.trip();
    assert.equal((await fetch(`${gw.url}/health/ready`)).status, 503);
    flaky.setDefault(undefined);
  });
});

describe('retries and the retry budget', () => {
  let a: MockUpstream;
  let b: MockUpstream;
  let c: MockUpstream;
  let gw: TestGateway;

  before(async () => {
    [a, b, c] = await Promise.all([startMockUpstream(), startMockUpstream(), startMockUpstream()]);
    gw = await startTestGateway({
      config: {
        resilience: { retry_budget_ratio: 0.2, retry_budget_min_concurrent: 0 },
        providers: { a: provider(a), b: provider(b), c: provider(c) },
        models: {
          single: {
            targets: [{ provider: 'a', model: 'gpt-4o-mini' }],
            retries: { max: 2, base_ms: 1, max_backoff_ms: 5, max_retry_after_ms: 2_000 },
            circuit_breaker: { enabled: false },
          },
          everywhere: {
            targets: [
              { provider: 'a', model: 'gpt-4o' },
              { provider: 'b', model: 'gpt-4o' },
              { provider: 'c', model: 'gpt-4o' },
            ],
            retries: { max: 2, base_ms: 1, max_backoff_ms: 5 },
            circuit_breaker: { enabled: false },
          },
        },
      },
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  test('a 429 with Retry-After is waited out, then retried on the same target', async () => {
    a.reset();
    // Earn budget first: every request deposits 0.2 tokens.
    for (let i = 0; i < 10; i++) assert.equal((await chat(gw.url, gw.masterKey, 'single')).status, 200);
    a.reset();
    a.enqueue({ kind: 'rateLimit', retryAfterMs: 400 });
    const result = await chat(gw.url, gw.masterKey, 'single', 'patience');
    assert.equal(result.status, 200, JSON.stringify(result.body));
    assert.equal(result.attempts, 2);
    assert.equal(result.fallbackReason, null);
    const [first, second] = a.requests;
    assert.ok(first?.completedAt !== undefined && second !== undefined);
    assert.ok(
      second.receivedAt - first.completedAt >= 395,
      `retry came ${second.receivedAt - first.completedAt} ms after a 400 ms Retry-After`,
    );
  });

  test('a Retry-After beyond max_retry_after_ms is not waited: 429 with retry-after to the client', async () => {
    a.reset();
    a.enqueue({ kind: 'rateLimit', retryAfterSeconds: 30 });
    const result = await chat(gw.url, gw.masterKey, 'single');
    assert.equal(result.status, 429);
    assert.equal(result.retryAfter, '30');
    assert.equal(result.body.error?.code, 'upstream_rate_limited');
    assert.equal(a.requests.length, 1);
  });

  test('full outage: upstream traffic stays within requests × (1 + budget ratio); no request is lost', async () => {
    // Spend whatever the earlier tests banked, so the count below starts from an empty bucket.
    const { budget } = gw.gateway.context.resilience;
    while (budget.tryAcquire()) {}
    for (const m of [a, b, c]) {
      m.reset();
      m.setDefault({ kind: 'status', status: 500 });
    }
    const requests = 60;
    const results = await Promise.all(
      Array.from({ length: requests }, (_, i) => chat(gw.url, gw.masterKey, 'everywhere', `outage ${i}`)),
    );
    assert.equal(results.length, requests);
    for (const r of results) {
      assert.equal(r.status, 502);
      assert.equal(r.body.error?.code, 'upstream_error');
      assert.equal(r.body.error?.type, 'upstream_error');
    }
    const upstreamCalls = a.requests.length + b.requests.length + c.requests.length;
    // Without a budget: 3 targets × 3 attempts = 540 calls.
    assert.ok(upstreamCalls <= requests * 1.2, `${upstreamCalls} upstream calls for ${requests} requests`);
    assert.ok(upstreamCalls >= requests);
    assert.ok(((await metricValue(gw, 'switchyard_retry_budget_exhausted_total')) ?? 0) > 0);
    for (const m of [a, b, c]) m.setDefault(undefined);
  });
});

describe('what counts against a breaker', () => {
  let upstream: MockUpstream;
  let gw: TestGateway;
  const target = 'judged/gpt-4o-mini';

  before(async () => {
    upstream = await startMockUpstream();
    gw = await startTestGateway({
      config: {
        providers: { judged: provider(upstream) },
        models: {
          judged: {
            targets: [{ provider: 'judged', model: 'gpt-4o-mini' }],
            // Each upstream answer is one breaker outcome; the rate rule stays out of the way.
            retries: { max: 0 },
            circuit_breaker: { failure_threshold: 3, min_requests: 1_000, recovery_timeout_ms: 600_000 },
          },
        },
      },
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  const breakerState = async (): Promise<string | undefined> => {
    const res = await fetch(`${gw.url}/admin/breakers`, {
      headers: { authorization: `Bearer ${gw.masterKey}` },
    });
    const body = (await res.json()) as { data: Array<{ id: string; state: string }> };
    return body.data.find((b) => b.id === target)?.state;
  };

  test('client 4xx answers and client aborts never count; then three 503s open it', async () => {
    upstream.reset();
    const clientErrors = [400, 401, 403, 404, 413, 422];
    for (const status of clientErrors) {
      for (let i = 0; i < 3; i++) {
        upstream.enqueue({ kind: 'status', status });
        const result = await chat(gw.url, gw.masterKey, 'judged', `client error ${status}`);
        assert.ok(result.status >= 400 && result.status < 600, `${status} → ${result.status}`);
        assert.ok(result.body.error, 'an error body reaches the client');
      }
    }
    assert.equal(upstream.requests.length, clientErrors.length * 3);
    assert.equal(await breakerState(), 'closed');

    // Clients that give up while the upstream is still thinking.
    const aborts = 5;
    for (let i = 0; i < aborts; i++) {
      upstream.enqueue({ kind: 'hang' });
      const controller = new AbortController();
      const pending = fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        signal: controller.signal,
        headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'judged', messages: [{ role: 'user', content: `abort ${i}` }] }),
      }).catch((error: unknown) => error);
      const [received] = (await upstream.waitForRequests(upstream.requests.length + 1)).slice(-1);
      controller.abort();
      assert.ok((await pending) instanceof Error);
      await upstream.waitForAbort({ requestId: received!.id });
    }
    // The breaker hears of an attempt when its ledger row is written: wait for all of them.
    await pollUntil('every aborted attempt ended', async () => {
      const rows = await ledgerRows(gw);
      return rows.filter((r) => r.status === 'client_closed').length === aborts;
    });
    assert.equal(await breakerState(), 'closed', 'nothing the clients did counted against the target');

    upstream.setDefault({ kind: 'status', status: 503 });
    for (let i = 0; i < 2; i++) {
      assert.equal((await chat(gw.url, gw.masterKey, 'judged', `503 ${i}`)).status, 503);
      assert.equal(await breakerState(), 'closed', `open after ${i + 1} 503s: earlier outcomes counted`);
    }
    assert.equal((await chat(gw.url, gw.masterKey, 'judged', '503 #3')).status, 503);
    assert.equal(await breakerState(), 'open');
    const sent = upstream.requests.length;
    const shortCircuited = await chat(gw.url, gw.masterKey, 'judged', 'after');
    assert.equal(shortCircuited.body.error?.code, 'upstream_unavailable');
    assert.equal(upstream.requests.length, sent, 'nothing sent while open');
  });

  const trips: Array<[string, MockBehaviour]> = [
    ['429', { kind: 'rateLimit', retryAfterSeconds: 1 }],
    ['529', { kind: 'status', status: 529 }],
  ];
  for (const [name, behaviour] of trips) {
    test(`${name} counts as a target failure: three open the breaker`, async () => {
      await fetch(`${gw.url}/admin/breakers/${encodeURIComponent(target)}/reset`, {
        method: 'POST',
        headers: { authorization: `Bearer ${gw.masterKey}` },
      });
      upstream.reset();
      upstream.setDefault(behaviour);
      for (let i = 0; i < 3; i++) {
        assert.equal(await breakerState(), 'closed');
        const result = await chat(gw.url, gw.masterKey, 'judged', `${name} ${i}`);
        assert.equal(result.status, name === '429' ? 429 : 503);
      }
      assert.equal(await breakerState(), 'open');
      assert.equal(
        (await chat(gw.url, gw.masterKey, 'judged', 'after')).body.error?.code,
        'upstream_unavailable',
      );
      assert.equal(upstream.requests.length, 3);
      upstream.setDefault(undefined);
    });
  }
});

describe('a half-open probe that hangs', () => {
  let hung: MockUpstream;
  let backup: MockUpstream;
  let gw: TestGateway;

  before(async () => {
    [hung, backup] = await Promise.all([startMockUpstream(), startMockUpstream()]);
    gw = await startTestGateway({
      config: {
        providers: { hung: provider(hung), backup: provider(backup) },
        models: {
          probed: {
            targets: [
              { provider: 'hung', model: 'gpt-4o-mini' },
              { provider: 'backup', model: 'gpt-4o-mini' },
            ],
            timeouts: { first_byte_ms: 300 },
            retries: { max: 0 },
            // Half-open again 1 ms after every opening: only a held probe permit keeps traffic away.
            circuit_breaker: { failure_threshold: 1, recovery_timeout_ms: 1 },
          },
        },
      },
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([hung.close(), backup.close()]);
  });

  test('is failed at its first-byte timeout; meanwhile nothing else reaches the target; then the next probe goes', async () => {
    hung.enqueue({ kind: 'status', status: 500 });
    const trip = await chat(gw.url, gw.masterKey, 'probed', 'trip');
    assert.deepEqual([trip.target, trip.fallbackReason], ['backup/gpt-4o-mini', 'upstream_error']);

    hung.setDefault({ kind: 'hang' });
    const probe = chat(gw.url, gw.masterKey, 'probed', 'probe');
    const [held] = await hung.waitForRequests(2).then((r) => r.slice(1));
    // The probe holds the only permit: these go to the backup without touching the target.
    const during = await Promise.all(
      Array.from({ length: 5 }, (_, i) => chat(gw.url, gw.masterKey, 'probed', `during ${i}`)),
    );
    for (const r of during) {
      assert.deepEqual([r.status, r.target, r.fallbackReason], [200, 'backup/gpt-4o-mini', 'circuit_open']);
    }
    assert.equal(hung.requests.length, 2);

    const probed = await probe;
    assert.deepEqual([probed.status, probed.target], [200, 'backup/gpt-4o-mini']);
    assert.equal(probed.fallbackReason, 'upstream_timeout', 'the hung probe ended as a timeout (a failure)');
    const aborted = await hung.waitForAbort({ requestId: held!.id });
    assert.equal(aborted.clientAborted, true, 'the gateway hung up on the probe');
    const rows = await ledgerRows(gw);
    assert.ok(rows.some((r) => r.provider === 'hung' && r.status === 'timeout'));

    // Not stuck half-open: the permit came back, so the next request probes and closes it.
    hung.setDefault(undefined);
    const recovered = await chat(gw.url, gw.masterKey, 'probed', 'recovered');
    assert.deepEqual([recovered.target, recovered.fallbackReason], ['hung/gpt-4o-mini', null]);
    assert.equal(hung.requests.length, 3);
  });
});
