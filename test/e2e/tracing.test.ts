/**
 * OpenTelemetry traces, end to end: a gateway configured only by the
 * standard OTEL_* variables exports to an in-process OTLP/HTTP receiver.
 * A request that falls back (its first target answers 500) is one request
 * span with children for auth, rate limit, cache lookup, routing, both
 * upstream attempts and the ledger write; each mock upstream sees the
 * `traceparent` of its own attempt; a client's `traceparent` makes the
 * request part of the client's trace; prompts stay out of spans unless
 * content capture is on.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../helpers/otlp-receiver.ts';

const apiKey = 'sk-CANARY-tracing-0123456789abcdef';
registerSecret(apiKey);

const SERVER = 2;
const CLIENT = 3;
const STATUS_ERROR = 2;

function provider(upstream: MockUpstream) {
  return { type: 'openai', base_url: upstream.baseUrl, api_key: apiKey };
}

/** A W3C traceparent of a fresh, sampled client trace. */
function clientTraceparent(sampled = true): { traceparent: string; traceId: string; spanId: string } {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceparent: `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`, traceId, spanId };
}

/** What an upstream received on its chat endpoint (background health probes list models: not these). */
function completions(upstream: MockUpstream) {
  return upstream.requests.filter((r) => r.path.endsWith('/chat/completions'));
}

function childrenOf(spans: ReceivedSpan[], parent: ReceivedSpan): ReceivedSpan[] {
  return spans.filter((s) => s.traceId === parent.traceId && s.parentSpanId === parent.spanId);
}

/** The request span of `traceId` and its children, once the request span and `expected` children arrived. */
async function requestTree(
  receiver: OtlpReceiver,
  traceId: string,
  expected: string[],
): Promise<{ root: ReceivedSpan; children: ReceivedSpan[]; all: ReceivedSpan[] }> {
  const complete = (spans: ReceivedSpan[]) => {
    const root = spans.find((s) => s.traceId === traceId && s.kind === SERVER);
    if (root === undefined) return false;
    const names = childrenOf(spans, root).map((s) => s.name);
    return expected.every((name) => names.filter((n) => n === name).length >= countOf(expected, name));
  };
  const spans = await receiver.waitFor(complete);
  const root = spans.find((s) => s.traceId === traceId && s.kind === SERVER)!;
  return { root, children: childrenOf(spans, root), all: spans.filter((s) => s.traceId === traceId) };
}

function countOf(list: string[], item: string): number {
  return list.filter((x) => x === item).length;
}

/** Sets the OTEL_* variables the gateway reads at start-up (this file runs in its own process). */
function exportTo(receiver: OtlpReceiver): void {
  process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = receiver.url;
  process.env['OTEL_SERVICE_NAME'] = 'switchyard-test';
  process.env['OTEL_RESOURCE_ATTRIBUTES'] = 'deployment.environment.name=test,team=platform';
  // Export every 20 ms instead of every 5 s: the receiver waits on exports, not on time.
  process.env['OTEL_BSP_SCHEDULE_DELAY'] = '20';
}

function stopExporting(): void {
  for (const name of [
    'OTEL_EXPORTER_OTLP_ENDPOINT',
    'OTEL_SERVICE_NAME',
    'OTEL_RESOURCE_ATTRIBUTES',
    'OTEL_BSP_SCHEDULE_DELAY',
  ]) {
    delete process.env[name];
  }
}

describe('tracing on (OTEL_EXPORTER_OTLP_ENDPOINT set)', () => {
  let receiver: OtlpReceiver;
  let bad: MockUpstream;
  let good: MockUpstream;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    [receiver, bad, good] = await Promise.all([
      startOtlpReceiver(),
      startMockUpstream(),
      startMockUpstream(),
    ]);
    exportTo(receiver);
    gw = await startTestGateway({
      config: {
        providers: { bad: provider(bad), good: provider(good) },
        models: {
          pair: {
            targets: [
              { provider: 'bad', model: 'gpt-4o-mini' },
              { provider: 'good', model: 'gpt-4o' },
            ],
            retries: { max: 0 },
            circuit_breaker: { enabled: false },
            cache: { enabled: true, scope: 'global' },
          },
        },
      },
    });
    stopExporting();
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await Promise.all([bad.close(), good.close(), receiver.close()]);
  });

  test('a fallback is one request span with two attempt spans, and each upstream sees its own traceparent', async () => {
    bad.reset();
    good.reset();
    bad.enqueue({ kind: 'status', status: 500, path: '/chat/completions' });
    const prompt = `tell me about the hidden prompt ${randomBytes(6).toString('hex')}`;
    const parent = clientTraceparent();
    const { data: completion, response } = await client.chat.completions
      .create(
        { model: 'pair', messages: [{ role: 'user', content: prompt }] },
        { headers: { traceparent: parent.traceparent } },
      )
      .withResponse();
    assert.equal(response.headers.get('x-switchyard-attempts'), '2');
    assert.equal(response.headers.get('x-switchyard-target'), 'good/gpt-4o');

    const { root, children, all } = await requestTree(receiver, parent.traceId, [
      'auth',
      'rate limit',
      'cache lookup',
      'routing',
      'chat gpt-4o-mini',
      'chat gpt-4o',
      'ledger write',
    ]);

    // The request span continues the client's trace.
    assert.equal(root.traceId, parent.traceId);
    assert.equal(root.parentSpanId, parent.spanId);
    assert.equal(root.name, 'POST /v1/chat/completions');
    assert.equal(root.attributes['http.request.method'], 'POST');
    assert.equal(root.attributes['http.route'], '/v1/chat/completions');
    assert.equal(root.attributes['http.response.status_code'], 200);
    assert.equal(root.attributes['switchyard.request_id'], response.headers.get('x-request-id'));
    assert.equal(root.attributes['gen_ai.operation.name'], 'chat');
    assert.equal(root.attributes['gen_ai.request.model'], 'pair');
    assert.equal(root.attributes['gen_ai.usage.input_tokens'], completion.usage?.prompt_tokens);
    assert.equal(root.attributes['gen_ai.usage.output_tokens'], completion.usage?.completion_tokens);
    assert.equal(root.attributes['switchyard.attempts'], 2);
    assert.equal(root.attributes['switchyard.cache.status'], 'miss');
    assert.notEqual(root.statusCode, STATUS_ERROR);
    assert.equal(root.resource['service.name'], 'switchyard-test');
    assert.equal(root.resource['deployment.environment.name'], 'test');
    assert.equal(root.resource['team'], 'platform');
    assert.equal(root.scope, 'switchyard');

    // Exactly the steps, each once; the attempts are the only client spans.
    assert.deepEqual(children.map((s) => s.name).sort(), [
      'auth',
      'cache lookup',
      'chat gpt-4o',
      'chat gpt-4o-mini',
      'ledger write',
      'rate limit',
      'routing',
    ]);
    const byName = (name: string) => children.find((s) => s.name === name)!;
    assert.equal(byName('auth').attributes['switchyard.key_id'], 'master');
    assert.equal(byName('routing').attributes['switchyard.routing.candidates'], 2);
    assert.equal(byName('routing').attributes['switchyard.routing.first_target'], 'bad/gpt-4o-mini');
    assert.equal(byName('cache lookup').attributes['switchyard.cache.status'], 'miss');
    assert.equal(byName('ledger write').attributes['switchyard.ledger.rows'], 2);

    const failed = byName('chat gpt-4o-mini');
    assert.equal(failed.kind, CLIENT);
    assert.equal(failed.statusCode, STATUS_ERROR);
    assert.equal(failed.attributes['error.type'], 'upstream_error');
    assert.equal(failed.attributes['switchyard.provider'], 'bad');
    assert.equal(failed.attributes['switchyard.target'], 'bad/gpt-4o-mini');
    assert.equal(failed.attributes['switchyard.attempt.number'], 1);
    assert.equal(failed.attributes['switchyard.attempt.status'], 'error');
    assert.equal(failed.attributes['http.response.status_code'], 500);
    assert.equal(failed.attributes['gen_ai.provider.name'], 'openai');
    assert.equal(failed.attributes['gen_ai.request.model'], 'gpt-4o-mini');

    const served = byName('chat gpt-4o');
    assert.equal(served.kind, CLIENT);
    assert.notEqual(served.statusCode, STATUS_ERROR);
    assert.equal(served.attributes['switchyard.provider'], 'good');
    assert.equal(served.attributes['switchyard.attempt.number'], 2);
    assert.equal(served.attributes['switchyard.attempt.status'], 'ok');
    assert.equal(served.attributes['http.response.status_code'], 200);
    assert.equal(served.attributes['gen_ai.operation.name'], 'chat');
    assert.equal(served.attributes['gen_ai.provider.name'], 'openai');
    assert.equal(served.attributes['gen_ai.request.model'], 'gpt-4o');
    assert.equal(served.attributes['gen_ai.usage.input_tokens'], completion.usage?.prompt_tokens);
    assert.equal(served.attributes['gen_ai.usage.output_tokens'], completion.usage?.completion_tokens);
    assert.ok(Number(served.attributes['gen_ai.usage.output_tokens']) > 0);

    // Each upstream saw the traceparent of its own attempt: the request's trace, that attempt's span.
    assert.equal(completions(bad).length, 1);
    assert.equal(completions(good).length, 1);
    assert.equal(completions(bad)[0]!.headers.traceparent, `00-${parent.traceId}-${failed.spanId}-01`);
    assert.equal(completions(good)[0]!.headers.traceparent, `00-${parent.traceId}-${served.spanId}-01`);

    // No prompt text anywhere in the trace, and no credential.
    const exported = JSON.stringify(all);
    assert.ok(!exported.includes(prompt), 'the prompt is in a span');
    assert.ok(!exported.includes(apiKey), 'the provider key is in a span');
    assert.ok(!exported.includes(gw.masterKey), 'the client key is in a span');
    assert.equal(root.attributes['gen_ai.input.messages'], undefined);
    assert.ok(receiver.contentTypes.every((type) => type === 'application/json'));
  });

  test('without a client traceparent the request starts a trace, and a cache hit is traced without an attempt', async () => {
    good.reset();
    const messages = [{ role: 'user' as const, content: `cache me ${randomBytes(6).toString('hex')}` }];
    // Nothing queued: the first target answers, and the answer is cached.
    await client.chat.completions.create({ model: 'pair', messages });
    const { response } = await client.chat.completions.create({ model: 'pair', messages }).withResponse();
    assert.equal(response.headers.get('x-switchyard-cache'), 'hit');
    const requestId = response.headers.get('x-request-id');

    const spans = await receiver.waitFor((all) =>
      all.some((s) => s.kind === SERVER && s.attributes['switchyard.request_id'] === requestId),
    );
    const root = spans.find((s) => s.kind === SERVER && s.attributes['switchyard.request_id'] === requestId)!;
    assert.equal(root.parentSpanId, '');
    const { children } = await requestTree(receiver, root.traceId, [
      'auth',
      'rate limit',
      'cache lookup',
      'ledger write',
    ]);
    const names = children.map((s) => s.name).sort();
    // Answered from process memory before any routing: no routing span, no upstream attempt.
    assert.deepEqual(names, ['auth', 'cache lookup', 'ledger write', 'rate limit']);
    const lookup = children.find((s) => s.name === 'cache lookup')!;
    assert.equal(lookup.attributes['switchyard.cache.status'], 'hit');
    assert.equal(lookup.attributes['switchyard.cache.tier'], 'memory');
    assert.equal(root.attributes['switchyard.cache.status'], 'hit');
  });

  test('a stream: its attempt span lasts until the stream ends, and carries its usage', async () => {
    good.reset();
    bad.reset();
    const parent = clientTraceparent();
    const stream = await client.chat.completions.create(
      {
        model: 'pair',
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: 'user', content: `stream ${randomBytes(6).toString('hex')}` }],
      },
      { headers: { traceparent: parent.traceparent } },
    );
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) usage = chunk.usage ?? usage;
    assert.ok(usage);
    const { root, children } = await requestTree(receiver, parent.traceId, [
      'chat gpt-4o-mini',
      'ledger write',
    ]);
    const attempt = children.find((s) => s.name === 'chat gpt-4o-mini')!;
    assert.equal(attempt.attributes['gen_ai.request.stream'], true);
    assert.equal(attempt.attributes['gen_ai.usage.output_tokens'], usage.completion_tokens);
    assert.equal(root.attributes['gen_ai.usage.output_tokens'], usage.completion_tokens);
    assert.equal(completions(bad)[0]!.headers.traceparent, `00-${parent.traceId}-${attempt.spanId}-01`);
  });

  test("a client's unsampled trace is followed: nothing exported, the upstream still gets the trace (unsampled)", async () => {
    bad.reset();
    const unsampled = clientTraceparent(false);
    await client.chat.completions.create(
      { model: 'pair', messages: [{ role: 'user', content: 'not sampled' }] },
      { headers: { traceparent: unsampled.traceparent } },
    );
    const seen = completions(bad)[0]!.headers.traceparent as string;
    assert.match(seen, new RegExp(`^00-${unsampled.traceId}-[0-9a-f]{16}-00$`));
    assert.doesNotMatch(seen, new RegExp(unsampled.spanId));

    // A sampled request after it: once its spans are in, the unsampled one's would have been before them.
    const sampled = clientTraceparent();
    await client.chat.completions.create(
      { model: 'pair', messages: [{ role: 'user', content: 'sampled' }] },
      { headers: { traceparent: sampled.traceparent } },
    );
    await requestTree(receiver, sampled.traceId, ['ledger write']);
    assert.equal(receiver.spans.filter((s) => s.traceId === unsampled.traceId).length, 0);
  });

  test('refusals are traced: a bad key fails the auth span, and the request span says 401', async () => {
    const parent = clientTraceparent();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer sk-not-a-key',
        'content-type': 'application/json',
        traceparent: parent.traceparent,
      },
      body: JSON.stringify({ model: 'pair', messages: [{ role: 'user', content: 'x' }] }),
    });
    assert.equal(res.status, 401);
    const { root, children } = await requestTree(receiver, parent.traceId, ['auth']);
    assert.equal(root.attributes['http.response.status_code'], 401);
    // A 4xx is the client's doing: the server span is not an error.
    assert.notEqual(root.statusCode, STATUS_ERROR);
    const auth = children.find((s) => s.name === 'auth')!;
    assert.equal(auth.statusCode, STATUS_ERROR);
    assert.equal(auth.attributes['error.type'], 'invalid_api_key');
    assert.ok(!JSON.stringify(children).includes('sk-not-a-key'));
  });

  test('a refusal by a rate limit fails the rate-limit span with its code', async () => {
    const created = await fetch(`${gw.url}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'traced-limited', limits: { requests_per_minute: 1 } }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const { key } = (await created.json()) as { key: string };
    registerSecret(key);
    const limited = new OpenAI({ baseURL: gw.baseUrl, apiKey: key, maxRetries: 0 });
    await limited.chat.completions.create({ model: 'pair', messages: [{ role: 'user', content: 'first' }] });
    const parent = clientTraceparent();
    await assert.rejects(
      limited.chat.completions.create(
        { model: 'pair', messages: [{ role: 'user', content: 'second' }] },
        { headers: { traceparent: parent.traceparent } },
      ),
      (error: unknown) => error instanceof OpenAI.APIError && error.status === 429,
    );
    const { root, children } = await requestTree(receiver, parent.traceId, ['auth', 'rate limit']);
    const limit = children.find((s) => s.name === 'rate limit')!;
    assert.equal(limit.statusCode, STATUS_ERROR);
    assert.equal(limit.attributes['error.type'], 'rate_limit_exceeded');
    assert.equal(root.attributes['http.response.status_code'], 429);
    assert.ok(
      children.every((s) => s.kind !== CLIENT),
      'nothing was sent upstream',
    );
    assert.ok(!JSON.stringify(children).includes(key));
  });

  test('health probes and metrics scrapes make no spans', async () => {
    const parent = clientTraceparent();
    const probe = await fetch(`${gw.url}/health/live`, { headers: { traceparent: parent.traceparent } });
    assert.equal(probe.status, 200);
    const after = clientTraceparent();
    await client.models.list({ headers: { traceparent: after.traceparent } });
    await requestTree(receiver, after.traceId, ['auth']);
    assert.equal(receiver.spans.filter((s) => s.traceId === parent.traceId).length, 0);
  });
});

describe('content capture (tracing.capture_content: true)', () => {
  let receiver: OtlpReceiver;
  let up: MockUpstream;
  let gw: TestGateway;

  before(async () => {
    [receiver, up] = await Promise.all([startOtlpReceiver(), startMockUpstream()]);
    exportTo(receiver);
    process.env['OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT'] = '400';
    gw = await startTestGateway({
      config: {
        tracing: { capture_content: true },
        providers: { up: provider(up) },
        models: { m: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }] } },
      },
    });
    stopExporting();
    delete process.env['OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT'];
  });
  after(async () => {
    await gw.close();
    await Promise.all([up.close(), receiver.close()]);
  });

  test('the prompt is on the request span only when the operator asked for it', async () => {
    const prompt = `captured prompt ${randomBytes(6).toString('hex')}`;
    const parent = clientTraceparent();
    const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
    await client.chat.completions.create(
      { model: 'm', messages: [{ role: 'user', content: prompt }] },
      { headers: { traceparent: parent.traceparent } },
    );
    const { root } = await requestTree(receiver, parent.traceId, ['chat gpt-4o-mini']);
    const messages = JSON.parse(String(root.attributes['gen_ai.input.messages'])) as Array<{
      content: string;
    }>;
    assert.equal(messages[0]?.content, prompt);
  });

  test('a captured prompt is cut at the attribute length limit (OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT)', async () => {
    const parent = clientTraceparent();
    const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
    await client.chat.completions.create(
      { model: 'm', messages: [{ role: 'user', content: 'long '.repeat(1_000) }] },
      { headers: { traceparent: parent.traceparent } },
    );
    const { root } = await requestTree(receiver, parent.traceId, ['chat gpt-4o-mini']);
    const captured = String(root.attributes['gen_ai.input.messages']);
    assert.equal(captured.length, 400);
    assert.ok(captured.startsWith('[{"role":"user","content":"long long'));
  });
});

describe('tracing off (no OTLP endpoint)', () => {
  let up: MockUpstream;
  let gw: TestGateway;

  before(async () => {
    up = await startMockUpstream();
    gw = await startTestGateway({
      config: {
        providers: { up: provider(up) },
        models: { m: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }] } },
      },
    });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  test('nothing is traced and no trace context is sent upstream', async () => {
    assert.equal(gw.gateway.context.tracing.enabled, false);
    const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
    await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(completions(up)[0]!.headers.traceparent, undefined);
    // A client's traceparent is not forwarded as such either: the gateway is not a transparent proxy.
    const parent = clientTraceparent();
    await client.chat.completions.create(
      { model: 'm', messages: [{ role: 'user', content: 'hi again' }] },
      { headers: { traceparent: parent.traceparent } },
    );
    assert.equal(completions(up)[1]!.headers.traceparent, undefined);
  });
});
