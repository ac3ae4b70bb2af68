/**
 * Hostile bodies and headers found by probing the gateway from outside
 * (issue 14): bad input is the client's error, refused before any attempt,
 * and can never count against a target's circuit breaker.
 *
 * - JSON nested 10,000 levels deep (objects, arrays, tool schemas, Anthropic
 *   content) once overflowed the gateway's own serialization, was billed as an
 *   upstream failure and opened the breaker for every tenant;
 * - the admin API stored deep metadata with a 500;
 * - DELETE with `Content-Type: application/json` and no body was refused;
 * - two Authorization headers silently used the first;
 * - a key created already expired was accepted;
 * - a `__proto__` key was reported as "not valid JSON".
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';
import { ledgerRows } from '../helpers/resilience.ts';

const DEPTH = 10_000;

let upstream: MockUpstream;
let gw: TestGateway;
let attackerKey: string;
let bystanderKey: string;

/** `{"a":{"a":…1…}}` nested `depth` levels. */
const deepObject = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
/** `[[[…1…]]]` nested `depth` levels. */
const deepArray = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function post(path: string, key: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> } satisfies Answer;
}

function raw(
  method: string,
  path: string,
  headers: Array<[string, string]>,
  body?: string,
): Promise<{ status: number; body: string }> {
  const { port } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      // An array of pairs keeps repeated header names as separate lines (Host is then ours to add).
      {
        host: '127.0.0.1',
        port: Number(port),
        method,
        path,
        headers: [['host', `127.0.0.1:${port}`], ...headers].flat(),
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function createKey(body: Record<string, unknown>): Promise<Answer> {
  return post('/admin/keys', gw.masterKey, JSON.stringify(body));
}

async function newKey(name: string): Promise<{ id: string; key: string }> {
  const created = await createKey({ name });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const key = created.body['key'] as string;
  registerSecret(key);
  return { id: created.body['id'] as string, key };
}

const chatBody = (extra: string) => `{"model":"gpt","messages":[{"role":"user","content":"hi"}],${extra}}`;

before(async () => {
  upstream = await startMockUpstream();
  gw = await startTestGateway({
    config: {
      providers: { up: { type: 'openai', base_url: upstream.baseUrl, api_key: 'sk-upstream-hostile-test' } },
      models: {
        gpt: {
          targets: [{ provider: 'up', model: 'gpt-4o-mini' }],
          retries: { max: 0 },
          // Opens after a handful of failures: any failure wrongly counted shows.
          circuit_breaker: { enabled: true, failure_threshold: 3, min_requests: 3, failure_rate: 0.5 },
        },
      },
    },
  });
  attackerKey = (await newKey('attacker')).key;
  bystanderKey = (await newKey('bystander')).key;
});

after(async () => {
  await gw?.close();
  await upstream?.close();
});

beforeEach(() => upstream.reset());

describe('deeply nested JSON is the client error, never the target failure', () => {
  const variants: Array<{ name: string; path: string; body: string; shape: 'openai' | 'anthropic' }> = [
    {
      name: 'deep object in metadata',
      path: '/v1/chat/completions',
      body: chatBody(`"metadata":${deepObject(DEPTH)}`),
      shape: 'openai',
    },
    {
      name: 'deep array in an unknown field',
      path: '/v1/chat/completions',
      body: chatBody(`"x_extra":${deepArray(DEPTH)}`),
      shape: 'openai',
    },
    {
      name: 'deep tool schema',
      path: '/v1/chat/completions',
      body: chatBody(
        `"tools":[{"type":"function","function":{"name":"f","parameters":${deepObject(DEPTH)}}}]`,
      ),
      shape: 'openai',
    },
    {
      name: 'deep streamed request',
      path: '/v1/chat/completions',
      body: chatBody(`"stream":true,"metadata":${deepObject(DEPTH)}`),
      shape: 'openai',
    },
    {
      name: 'deep Anthropic content (tool_use input)',
      path: '/v1/messages',
      body: `{"model":"gpt","max_tokens":16,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":${deepObject(DEPTH)}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}]}`,
      shape: 'anthropic',
    },
    {
      name: 'deep Anthropic tool_result content',
      path: '/v1/messages',
      body: `{"model":"gpt","max_tokens":16,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":${deepArray(DEPTH)}}]}]}`,
      shape: 'anthropic',
    },
  ];

  test('30 deep requests from one key: 400 each, nothing sent upstream, no breaker opened, others served', async () => {
    for (let i = 0; i < 30; i++) {
      const variant = variants[i % variants.length]!;
      const answer = await post(variant.path, attackerKey, variant.body);
      assert.equal(answer.status, 400, `${variant.name}: ${JSON.stringify(answer.body)}`);
      if (variant.shape === 'openai') {
        const error = answer.body['error'] as Record<string, unknown>;
        assert.equal(error['type'], 'invalid_request_error', variant.name);
        assert.equal(error['code'], 'invalid_request', variant.name);
        assert.match(String(error['message']), /nested/, variant.name);
        assert.ok(typeof error['param'] === 'string' && error['param'].length > 0, variant.name);
      } else {
        assert.equal(answer.body['type'], 'error', variant.name);
        const error = answer.body['error'] as Record<string, unknown>;
        assert.equal(error['type'], 'invalid_request_error', variant.name);
        assert.match(String(error['message']), /nested/, variant.name);
      }
    }
    assert.equal(upstream.requests.length, 0, 'a refused request reached the upstream');

    const breakers = await fetch(`${gw.url}/admin/breakers`, {
      headers: { authorization: `Bearer ${gw.masterKey}` },
    });
    const list = (await breakers.json()) as { data: Array<{ state: string; id: string }> };
    assert.ok(list.data.length > 0);
    for (const breaker of list.data) assert.equal(breaker.state, 'closed', breaker.id);

    const served = await post('/v1/chat/completions', bystanderKey, chatBody('"user":"b"'));
    assert.equal(served.status, 200, JSON.stringify(served.body));
    assert.equal(upstream.requests.length, 1);

    // No ledger row blames the provider for the refused requests.
    const rows = await ledgerRows(gw);
    assert.deepEqual(
      rows.filter((r) => r.status !== 'ok'),
      [],
      'refused requests must not leave failed attempts',
    );
  });

  test('a depth a real tool schema uses still passes', async () => {
    const answer = await post(
      '/v1/chat/completions',
      bystanderKey,
      chatBody(`"tools":[{"type":"function","function":{"name":"f","parameters":${deepObject(30)}}}]`),
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
  });

  test('POST /admin/keys with metadata nested 10,000 deep → 400 naming metadata', async () => {
    const answer = await post(
      '/admin/keys',
      gw.masterKey,
      `{"name":"deep","metadata":{"m":${deepObject(DEPTH)}}}`,
    );
    assert.equal(answer.status, 400, JSON.stringify(answer.body));
    const error = answer.body['error'] as Record<string, unknown>;
    assert.equal(error['param'], 'metadata');
    assert.match(String(error['message']), /^metadata: .*nested/);
  });
});

describe('body-less routes and JSON hygiene', () => {
  test('DELETE /admin/keys/:id with Content-Type: application/json and no body revokes the key', async () => {
    const victim = await newKey('revoke-me');
    const answer = await raw('DELETE', `/admin/keys/${victim.id}`, [
      ['authorization', `Bearer ${gw.masterKey}`],
      ['content-type', 'application/json'],
    ]);
    assert.equal(answer.status, 200, answer.body);
    assert.deepEqual(JSON.parse(answer.body), { id: victim.id, revoked: true });
    const after = await post('/v1/chat/completions', victim.key, chatBody('"user":"v"'));
    assert.equal(after.status, 401);
  });

  test('an empty JSON body on a model route is still a clear 400', async () => {
    const answer = await raw('POST', '/v1/chat/completions', [
      ['authorization', `Bearer ${bystanderKey}`],
      ['content-type', 'application/json'],
    ]);
    assert.equal(answer.status, 400, answer.body);
    const error = JSON.parse(answer.body).error as Record<string, unknown>;
    assert.equal(error['param'], 'body');
    assert.match(String(error['message']), /empty/);
  });

  test('a body with a __proto__ key says what is wrong', async () => {
    const answer = await post(
      '/v1/chat/completions',
      bystanderKey,
      chatBody('"metadata":{"__proto__":{"admin":true}}'),
    );
    assert.equal(answer.status, 400, JSON.stringify(answer.body));
    const error = answer.body['error'] as Record<string, unknown>;
    assert.doesNotMatch(String(error['message']), /not valid JSON/);
    assert.match(String(error['message']), /__proto__/);
    assert.equal(upstream.requests.length, 0);
  });
});

describe('billing identity', () => {
  test('requests reusing one x-request-id are each billed; the id is echoed and kept for correlation', async () => {
    const shared = 'reused-request-id-0001';
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${bystanderKey}`,
          'content-type': 'application/json',
          'x-request-id': shared,
        },
        body: chatBody(`"user":"u${i}"`),
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-request-id'), shared);
      await res.arrayBuffer();
    }
    const rows = (await ledgerRows(gw)).filter((r) => r.client_request_id === shared);
    assert.equal(rows.length, 3, 'one ok row per request, none lost to a key collision');
    assert.equal(new Set(rows.map((r) => r.request_id)).size, 3);
    assert.ok(rows.every((r) => r.status === 'ok' && r.request_id !== shared));
  });
});

describe('credentials', () => {
  test('two Authorization headers → 400 (ambiguous credentials), whichever comes first', async () => {
    for (const pair of [
      [bystanderKey, 'sk-sy-not-a-real-key-0000000000'],
      ['sk-sy-not-a-real-key-0000000000', bystanderKey],
      [bystanderKey, bystanderKey],
    ]) {
      const answer = await raw(
        'POST',
        '/v1/chat/completions',
        [
          ['authorization', `Bearer ${pair[0]}`],
          ['authorization', `Bearer ${pair[1]}`],
          ['content-type', 'application/json'],
        ],
        chatBody('"user":"x"'),
      );
      assert.equal(answer.status, 400, answer.body);
      assert.match(JSON.parse(answer.body).error.message, /Authorization/);
    }
    // Two x-api-key headers on the Anthropic route, too.
    const answer = await raw(
      'POST',
      '/v1/messages',
      [
        ['x-api-key', bystanderKey],
        ['x-api-key', bystanderKey],
        ['content-type', 'application/json'],
      ],
      '{"model":"gpt","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}',
    );
    assert.equal(answer.status, 400, answer.body);
    assert.equal(JSON.parse(answer.body).type, 'error');
    assert.equal(upstream.requests.length, 0);
  });

  test('a key created with expires_at in the past is refused', async () => {
    for (const expires_at of [Date.now() - 60_000, new Date(Date.now() - 60_000).toISOString()]) {
      const answer = await createKey({ name: 'already-expired', expires_at });
      assert.equal(answer.status, 400, JSON.stringify(answer.body));
      const error = answer.body['error'] as Record<string, unknown>;
      assert.equal(error['param'], 'expires_at');
      assert.match(String(error['message']), /past/);
    }
    const future = await createKey({ name: 'expires-later', expires_at: Date.now() + 3_600_000 });
    assert.equal(future.status, 201);
    registerSecret(future.body['key'] as string);
  });
});
