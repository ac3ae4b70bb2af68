/**
 * Routing through a real gateway: OpenAI-compatible mock upstreams on
 * loopback, the official openai SDK as the client, counts taken at the mocks.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import type { ModelTargetsView } from '../../src/routing/router.ts';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, type RecordedRequest, startMockUpstream } from '../helpers/mock-upstream.ts';

let a: MockUpstream;
let b: MockUpstream;
let local: MockUpstream;
let gw: TestGateway;
let master: OpenAI;

const apiKey = 'sk-CANARY-routing-0123456789abcdef';
const user = (content: string) => [{ role: 'user' as const, content }];

function sdk(key: string): OpenAI {
  return new OpenAI({ baseURL: gw.baseUrl, apiKey: key, maxRetries: 0 });
}

/** How many requests this mock received for this upstream model. */
function count(mock: MockUpstream, model: string): number {
  return mock.requests.filter((r: RecordedRequest) => (r.body as { model?: unknown })?.model === model)
    .length;
}

async function createKey(body: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const created = (await res.json()) as { key: string };
  registerSecret(created.key);
  assert.equal(res.status, 201);
  return created.key;
}

async function admin(
  method: string,
  path: string,
  key = gw.masterKey,
): Promise<{ status: number; body: AdminBody }> {
  const res = await fetch(`${gw.url}${path}`, { method, headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: (await res.json()) as AdminBody };
}

interface AdminBody {
  data?: ModelTargetsView[];
  id?: string;
  active?: boolean;
  error?: { code: string; type: string };
}

function opsModel(body: AdminBody): ModelTargetsView {
  const ops = body.data?.find((m) => m.model === 'ops');
  assert.ok(ops, 'the ops model is listed');
  return ops;
}

before(async () => {
  registerSecret(apiKey);
  [a, b, local] = await Promise.all([startMockUpstream(), startMockUpstream(), startMockUpstream()]);
  const provider = (mock: MockUpstream) => ({ type: 'openai', base_url: mock.baseUrl, api_key: apiKey });
  gw = await startTestGateway({
    config: {
      providers: { a: provider(a), b: provider(b), local: provider(local) },
      models: {
        split: {
          strategy: 'weighted',
          seed: 7,
          targets: [
            { provider: 'a', model: 'split-model', weight: 75 },
            { provider: 'b', model: 'split-model', weight: 25 },
          ],
        },
        auto: {
          strategy: 'complexity',
          targets: [
            { provider: 'a', model: 'small-model', tier: 'small' },
            { provider: 'b', model: 'large-model', tier: 'large' },
          ],
        },
        chat: {
          routes: [{ when: { key_tier: 'free' }, targets: ['local'] }],
          targets: [
            { provider: 'a', model: 'paid-model' },
            { provider: 'local', model: 'llama', tags: ['local'] },
          ],
          // A fault on the free key's only target must reach the client (no retry on it).
          retries: { max: 0 },
        },
        ops: {
          targets: [
            { provider: 'a', model: 'org/ops-model' },
            { provider: 'b', model: 'ops-model' },
          ],
        },
      },
    },
  });
  master = sdk(gw.masterKey);
});

after(async () => {
  await gw.close();
  await Promise.all([a.close(), b.close(), local.close()]);
});

describe('weighted split', () => {
  test('300 requests split about 75/25 at the upstreams (seeded)', async () => {
    for (let batch = 0; batch < 15; batch++) {
      await Promise.all(
        Array.from({ length: 20 }, () =>
          master.chat.completions.create({ model: 'split', messages: user('hello') }),
        ),
      );
    }
    const toA = count(a, 'split-model');
    const toB = count(b, 'split-model');
    assert.equal(toA + toB, 300);
    assert.ok(toA >= 195 && toA <= 255, `a got ${toA} of 300`);
    assert.ok(toB > 0);
  });
});

describe('complexity', () => {
  test('a small prompt goes to the small tier, with score and tier headers', async () => {
    const before = count(a, 'small-model');
    const { data, response } = await master.chat.completions
      .create({ model: 'auto', messages: user('What is the capital of France?') })
      .withResponse();
    assert.equal(data.model, 'auto');
    assert.equal(response.headers.get('x-switchyard-tier'), 'small');
    assert.equal(response.headers.get('x-switchyard-complexity'), '0');
    assert.equal(count(a, 'small-model'), before + 1);
    // The decision is on the request's access log line too.
    const requestId = response.headers.get('x-request-id');
    const line = readFileSync(gw.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes(`"requestId":"${requestId}"`) && l.includes('"msg":"request"'))
      .map((l) => JSON.parse(l) as { routing?: unknown })[0];
    assert.equal(response.headers.get('x-switchyard-complexity-confidence'), '1');
    assert.equal(response.headers.get('x-switchyard-complexity-classifier'), 'heuristic');
    assert.deepEqual(line?.routing, { complexity: 0, tier: 'small', confidence: 1, classifier: 'heuristic' });
  });

  test('a demanding streamed prompt goes to the large tier; headers on the stream too', async () => {
    const before = count(b, 'large-model');
    const { data: stream, response } = await master.chat.completions
      .create({
        model: 'auto',
        stream: true,
        messages: user(
          'Design the architecture of a payment ledger, analyze the consistency trade-offs and compare two schemas.',
        ),
      })
      .withResponse();
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.match(text, /^Echo: Design/);
    assert.equal(response.headers.get('x-switchyard-tier'), 'large');
    assert.ok(Number(response.headers.get('x-switchyard-complexity')) > 6);
    assert.equal(count(b, 'large-model'), before + 1);
  });
});

describe('conditions', () => {
  test('a free key never reaches the paid upstream, even when local fails; a pro key does', async () => {
    const free = sdk(await createKey({ name: 'free-user', tier: 'free' }));
    const pro = sdk(await createKey({ name: 'pro-user', tier: 'pro' }));
    const paidBefore = count(a, 'paid-model');
    for (let i = 0; i < 10; i++) {
      const completion = await free.chat.completions.create({ model: 'chat', messages: user(`free ${i}`) });
      assert.equal(completion.choices[0]?.message.content, `Echo: free ${i}`);
    }
    assert.equal(count(local, 'llama'), 10);
    local.enqueue({ kind: 'status', status: 500, path: '/chat/completions' });
    await assert.rejects(
      free.chat.completions.create({ model: 'chat', messages: user('local is down') }),
      (error: unknown) => error instanceof OpenAI.APIError && error.status === 502,
    );
    assert.equal(count(a, 'paid-model'), paidBefore, 'the free key never reached the paid target');
    await pro.chat.completions.create({ model: 'chat', messages: user('pro') });
    assert.equal(count(a, 'paid-model'), paidBefore + 1);
  });
});

describe('admin targets', () => {
  test('GET /admin/targets lists every model with role, state and statistics', async () => {
    await master.chat.completions.create({ model: 'ops', messages: user('warm up') });
    const { status, body } = await admin('GET', '/admin/targets');
    assert.equal(status, 200);
    const ops = opsModel(body);
    assert.equal(ops.strategy, 'fallback');
    assert.deepEqual(
      ops.targets.map((t) => [t.id, t.role, t.active]),
      [
        ['a/org/ops-model', 'primary', true],
        ['b/ops-model', 'primary', true],
      ],
    );
    assert.ok(ops.targets[0]!.samples >= 1);
    assert.equal(typeof ops.targets[0]!.latency_ewma_ms, 'number');
  });

  test('deactivate stops traffic at once; activate restores it; ids are URL-encoded', async () => {
    const first = encodeURIComponent('a/org/ops-model');
    const off = await admin('POST', `/admin/targets/${first}/deactivate`);
    assert.equal(off.status, 200);
    assert.deepEqual(off.body, { id: 'a/org/ops-model', active: false });
    const aBefore = count(a, 'org/ops-model');
    const bBefore = count(b, 'ops-model');
    for (let i = 0; i < 5; i++) await master.chat.completions.create({ model: 'ops', messages: user('x') });
    assert.equal(count(a, 'org/ops-model'), aBefore);
    assert.equal(count(b, 'ops-model'), bBefore + 5);

    // The raw (unencoded) form is accepted too: the action is the last segment.
    const on = await admin('POST', '/admin/targets/a/org/ops-model/activate');
    assert.deepEqual(on.body, { id: 'a/org/ops-model', active: true });
    await master.chat.completions.create({ model: 'ops', messages: user('y') });
    assert.equal(count(a, 'org/ops-model'), aBefore + 1);
  });

  test('every target deactivated: 503 in the OpenAI error shape', async () => {
    await admin('POST', `/admin/targets/${encodeURIComponent('a/org/ops-model')}/deactivate`);
    await admin('POST', `/admin/targets/${encodeURIComponent('b/ops-model')}/deactivate`);
    try {
      await assert.rejects(
        master.chat.completions.create({ model: 'ops', messages: user('nobody home') }),
        (error: unknown) =>
          error instanceof OpenAI.APIError &&
          error.status === 503 &&
          error.code === 'no_target_available' &&
          /deactivated/.test(error.message),
      );
    } finally {
      await admin('POST', `/admin/targets/${encodeURIComponent('a/org/ops-model')}/activate`);
      await admin('POST', `/admin/targets/${encodeURIComponent('b/ops-model')}/activate`);
    }
  });

  test('unknown target: 404; non-master key: 403; no key: 401', async () => {
    const unknown = await admin('POST', `/admin/targets/${encodeURIComponent('a/nope')}/deactivate`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error?.type, 'not_found_error');
    const virtual = await createKey({ name: 'not-admin' });
    for (const [method, path] of [
      ['GET', '/admin/targets'],
      ['POST', `/admin/targets/${encodeURIComponent('b/ops-model')}/deactivate`],
    ] as const) {
      const refused = await admin(method, path, virtual);
      assert.equal(refused.status, 403);
      assert.equal(refused.body.error?.code, 'forbidden');
      const res = await fetch(`${gw.url}${path}`, { method });
      assert.equal(res.status, 401);
    }
    // The refused deactivation did not happen.
    const { body } = await admin('GET', '/admin/targets');
    assert.equal(opsModel(body).targets[1]?.active, true);
  });
});
