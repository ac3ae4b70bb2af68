/**
 * The response cache end to end, with real Redis: miss then hit, scope per
 * key, request directives, what is never stored, single flight, two gateways
 * sharing Redis, Redis lost and back, streaming replay with the official SDK.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';
import { type RedisService, startRedis } from '../helpers/services.ts';

const UPSTREAM_KEY = 'sk-CANARY-cache-0123456789';

function cachedModels(upstream: MockUpstream, cache: Record<string, unknown> = { enabled: true }) {
  return {
    providers: { up: { type: 'openai', base_url: upstream.baseUrl, api_key: UPSTREAM_KEY } },
    models: {
      cached: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }], retries: { max: 0 }, cache },
      shared: {
        targets: [{ provider: 'up', model: 'gpt-4o-mini' }],
        retries: { max: 0 },
        cache: { enabled: true, scope: 'global' },
      },
      uncached: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }], retries: { max: 0 } },
      embed: { targets: [{ provider: 'up', model: 'text-embedding-3-small' }], cache: { enabled: true } },
    },
  };
}

async function post(
  gw: TestGateway,
  body: Record<string, unknown>,
  options: { key?: string; headers?: Record<string, string>; path?: string } = {},
): Promise<{
  status: number;
  cache: string | null;
  requestId: string | null;
  body: Record<string, unknown>;
}> {
  const res = await fetch(`${gw.url}${options.path ?? '/v1/chat/completions'}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${options.key ?? gw.masterKey}`,
      'content-type': 'application/json',
      ...options.headers,
    },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    cache: res.headers.get('x-switchyard-cache'),
    requestId: res.headers.get('x-request-id'),
    body: (await res.json()) as Record<string, unknown>,
  };
}

async function createKey(gw: TestGateway, name: string): Promise<string> {
  const res = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  return ((await res.json()) as { key: string }).key;
}

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'cached',
  messages: [{ role: 'user', content }],
  ...extra,
});

describe('response cache on one gateway with Redis', () => {
  let redis: RedisService;
  let upstream: MockUpstream;
  let gw: TestGateway;
  before(async () => {
    [redis, upstream] = await Promise.all([startRedis(), startMockUpstream()]);
    gw = await startTestGateway({ config: { ...cachedModels(upstream), storage: { redis_url: redis.url } } });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
    await redis.stop();
  });

  test('a miss goes upstream, the same request then hits without calling it', async () => {
    upstream.reset();
    const first = await post(gw, chat('miss then hit'));
    assert.equal(first.status, 200);
    assert.equal(first.cache, 'miss');
    const second = await post(gw, chat('miss then hit'));
    assert.equal(second.cache, 'hit');
    assert.deepEqual(second.body, first.body);
    assert.equal(upstream.requests.length, 1);
    // The ledger: the miss billed upstream, the hit one `cache` row with no tokens and no cost.
    const { ledger, database } = gw.gateway.context;
    await ledger.flush();
    const rows = await database.db
      .selectFrom('usage_ledger')
      .select(['provider', 'cache_status', 'prompt_tokens', 'completion_tokens', 'cost_micros', 'status'])
      .where('request_id', 'in', [String(first.requestId), String(second.requestId)])
      .orderBy('created_at')
      .execute();
    assert.equal(rows.length, 2);
    assert.equal(rows[0]?.cache_status, 'miss');
    assert.ok((rows[0]?.prompt_tokens ?? 0) > 0);
    assert.deepEqual(rows[1], {
      provider: 'cache',
      cache_status: 'hit',
      prompt_tokens: 0,
      completion_tokens: 0,
      cost_micros: 0,
      status: 'ok',
    });
  });

  test('every output-changing parameter is its own entry; stream and user are not', async () => {
    upstream.reset();
    const base = chat('parameters');
    await post(gw, base);
    const variants = [
      { temperature: 0.2 },
      { temperature: 1 },
      { top_p: 0.5 },
      { max_tokens: 50 },
      { stop: ['x'] },
      { seed: 7 },
      { n: 1 },
      { response_format: { type: 'json_object' } },
      { logit_bias: { '50256': -100 } },
      { presence_penalty: 0.1 },
      { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] },
    ];
    for (const extra of variants) {
      const res = await post(gw, { ...base, ...extra });
      assert.equal(res.cache, 'miss', `${JSON.stringify(extra)} must not share the base entry`);
    }
    assert.equal((await post(gw, { ...base, user: 'someone' })).cache, 'hit');
    assert.equal((await post(gw, { model: 'cached', messages: base.messages })).cache, 'hit');
    assert.equal(upstream.requests.length, 1 + variants.length);
  });

  test('two keys asking the same never share an answer; a global scope does', async () => {
    upstream.reset();
    const [alice, bob] = [await createKey(gw, 'alice'), await createKey(gw, 'bob')];
    assert.equal((await post(gw, chat('same prompt'), { key: alice })).cache, 'miss');
    assert.equal((await post(gw, chat('same prompt'), { key: alice })).cache, 'hit');
    assert.equal((await post(gw, chat('same prompt'), { key: bob })).cache, 'miss');
    assert.equal(upstream.requests.length, 2);
    const shared = { ...chat('shared prompt'), model: 'shared' };
    assert.equal((await post(gw, shared, { key: alice })).cache, 'miss');
    assert.equal((await post(gw, shared, { key: bob })).cache, 'hit');
  });

  test('no-store and no-cache are honoured; a bad TTL header is a 400', async () => {
    upstream.reset();
    const body = chat('directives');
    assert.equal((await post(gw, body, { headers: { 'cache-control': 'no-store' } })).cache, 'bypass');
    assert.equal((await post(gw, body)).cache, 'miss', 'no-store stored nothing');
    assert.equal((await post(gw, body)).cache, 'hit');
    const refreshed = await post(gw, body, { headers: { 'cache-control': 'no-cache' } });
    assert.equal(refreshed.cache, 'miss');
    assert.equal(upstream.requests.length, 3);
    const bad = await post(gw, body, { headers: { 'x-switchyard-cache-ttl': 'forever' } });
    assert.equal(bad.status, 400);
    assert.equal((bad.body['error'] as { param: string }).param, 'x-switchyard-cache-ttl');
  });

  test('an answer expires with its lifetime, in memory and in Redis', async () => {
    upstream.reset();
    const body = chat('short-lived');
    const first = await post(gw, body, { headers: { 'x-switchyard-cache-ttl': '1' } });
    assert.equal(first.cache, 'miss');
    assert.equal((await post(gw, body)).cache, 'hit');
    // Redis holds it with that lifetime (the entry's write is sent before the answer).
    const redisClient = gw.gateway.context.redis!;
    const names = await redisClient.keys(`${gw.gateway.context.config.storage.redis_prefix}cache:cached:*`);
    const ttls = await Promise.all(names.map((name) => redisClient.pttl(name)));
    assert.ok(
      ttls.some((ms) => ms > 0 && ms <= 1000),
      `one entry with a lifetime of at most 1 s: ${JSON.stringify(ttls)}`,
    );
    // Expiry is the behaviour under test: ask until it lapses (bounded at 3 s), then it is a miss.
    let cache: string | null = 'hit';
    await pollUntil(
      'the 1 s answer lapsed',
      async () => {
        cache = (await post(gw, body)).cache;
        return cache !== 'hit';
      },
      { attempts: 60, intervalMs: 50 },
    );
    assert.equal(cache, 'miss');
    assert.equal(upstream.requests.length, 2);
  });

  test('errors and truncated answers are never stored', async () => {
    upstream.reset();
    upstream.enqueue({ kind: 'status', status: 500 });
    assert.equal((await post(gw, chat('error first'))).status, 502);
    assert.equal((await post(gw, chat('error first'))).cache, 'miss');
    const cut = chat('one two three four five six', { max_tokens: 2 });
    assert.equal(
      ((await post(gw, cut)).body['choices'] as Array<{ finish_reason: string }>)[0]!.finish_reason,
      'length',
    );
    assert.equal((await post(gw, cut)).cache, 'miss');
    assert.equal(upstream.requests.length, 4);
  });

  test('a model without caching bypasses it', async () => {
    upstream.reset();
    const body = { ...chat('not cached'), model: 'uncached' };
    assert.equal((await post(gw, body)).cache, 'bypass');
    assert.equal((await post(gw, body)).cache, 'bypass');
    assert.equal(upstream.requests.length, 2);
  });

  test('100 identical concurrent requests make one upstream call', async () => {
    upstream.reset();
    upstream.setDefault({ slowFirstByteMs: 200 });
    try {
      const answers = await Promise.all(Array.from({ length: 100 }, () => post(gw, chat('stampede'))));
      assert.ok(answers.every((a) => a.status === 200));
      assert.equal(answers.filter((a) => a.cache === 'miss').length, 1);
      assert.equal(new Set(answers.map((a) => JSON.stringify(a.body))).size, 1);
      assert.equal(upstream.requests.length, 1);
    } finally {
      upstream.setDefault(undefined);
    }
  });

  test('embeddings are cached too', async () => {
    upstream.reset();
    const body = { model: 'embed', input: 'embed me' };
    const first = await post(gw, body, { path: '/v1/embeddings' });
    const second = await post(gw, body, { path: '/v1/embeddings' });
    assert.deepEqual([first.cache, second.cache], ['miss', 'hit']);
    assert.deepEqual(second.body, first.body);
    assert.equal(upstream.requests.length, 1);
  });

  test('a streaming request is served from the cache as a stream (openai SDK), usage included', async () => {
    upstream.reset();
    const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
    const read = async () => {
      const { data: stream, response } = await client.chat.completions
        .create({
          model: 'cached',
          stream: true,
          stream_options: { include_usage: true },
          messages: [{ role: 'user', content: 'stream me please' }],
        })
        .withResponse();
      let text = '';
      let usage: OpenAI.CompletionUsage | null | undefined;
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        finish ??= chunk.choices[0]?.finish_reason;
        if (chunk.usage) usage = chunk.usage;
      }
      return { text, usage, finish, cache: response.headers.get('x-switchyard-cache') };
    };
    const streamed = await read();
    const replayed = await read();
    assert.equal(streamed.cache, 'miss');
    assert.equal(replayed.cache, 'hit');
    assert.equal(replayed.text, streamed.text);
    assert.equal(replayed.text, 'Echo: stream me please');
    assert.equal(replayed.finish, 'stop');
    assert.deepEqual(replayed.usage, streamed.usage);
    // The stored stream also answers a non-streaming request.
    const json = await post(gw, chat('stream me please'));
    assert.equal(json.cache, 'hit');
    assert.equal(
      (json.body['choices'] as Array<{ message: { content: string } }>)[0]!.message.content,
      streamed.text,
    );
    assert.equal(upstream.requests.length, 1);
  });

  test('/v1/messages: a stored answer serves JSON and a replayed stream (anthropic SDK)', async () => {
    upstream.reset();
    const client = new Anthropic({ baseURL: gw.url, apiKey: gw.masterKey, maxRetries: 0 });
    const params = {
      model: 'cached',
      max_tokens: 100,
      messages: [{ role: 'user' as const, content: 'anthropic please' }],
    };
    const first = await client.messages.create(params).withResponse();
    assert.equal(first.response.headers.get('x-switchyard-cache'), 'miss');
    const second = await client.messages.create(params).withResponse();
    assert.equal(second.response.headers.get('x-switchyard-cache'), 'hit');
    assert.deepEqual(second.data, first.data);
    const { data: stream, response } = await client.messages
      .create({ ...params, stream: true })
      .withResponse();
    assert.equal(response.headers.get('x-switchyard-cache'), 'hit');
    let text = '';
    let stopReason: string | null | undefined;
    let outputTokens = 0;
    for await (const event of stream) {
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
      if (event.type === 'message_delta') {
        stopReason = event.delta.stop_reason;
        outputTokens = event.usage.output_tokens;
      }
    }
    const block = first.data.content[0];
    assert.equal(text, block?.type === 'text' ? block.text : undefined);
    assert.equal(stopReason, 'end_turn');
    assert.equal(outputTokens, first.data.usage.output_tokens);
    // A streamed answer on this route is stored once whole: JSON and streams then hit.
    const fresh = { ...params, messages: [{ role: 'user' as const, content: 'streamed first' }] };
    const streamed = await client.messages.create({ ...fresh, stream: true }).withResponse();
    assert.equal(streamed.response.headers.get('x-switchyard-cache'), 'miss');
    let streamedText = '';
    for await (const event of streamed.data) {
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta')
        streamedText += event.delta.text;
    }
    const afterStream = await client.messages.create(fresh).withResponse();
    assert.equal(afterStream.response.headers.get('x-switchyard-cache'), 'hit');
    const firstBlock = afterStream.data.content[0];
    assert.equal(firstBlock?.type === 'text' ? firstBlock.text : undefined, streamedText);
    assert.equal(afterStream.data.stop_reason, 'end_turn');
    // The OpenAI route keeps its own entries: the same prompt there is a miss.
    assert.equal((await post(gw, chat('anthropic please', { max_tokens: 100 }))).cache, 'miss');
    assert.equal(upstream.requests.length, 3);
  });

  test('a stream the client abandons stores nothing', async () => {
    upstream.reset();
    upstream.setDefault({ frames: 50, frameDelayMs: 20 });
    try {
      const controller = new AbortController();
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(chat('abandoned stream', { stream: true })),
        signal: controller.signal,
      });
      const reader = res.body!.getReader();
      await reader.read();
      controller.abort();
      await upstream.waitForAbort();
    } finally {
      upstream.setDefault(undefined);
    }
    assert.equal((await post(gw, chat('abandoned stream'))).cache, 'miss');
  });

  test('DELETE /admin/cache removes entries by model, and all of them', async () => {
    upstream.reset();
    await post(gw, chat('to invalidate'));
    await post(gw, { ...chat('other model'), model: 'shared' });
    const res = await fetch(`${gw.url}/admin/cache?model=cached`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${gw.masterKey}` },
    });
    assert.equal(res.status, 200);
    const { deleted } = (await res.json()) as { deleted: Record<string, number> };
    assert.ok((deleted['memory'] ?? 0) >= 1 && (deleted['redis'] ?? 0) >= 1);
    assert.equal((await post(gw, chat('to invalidate'))).cache, 'miss');
    assert.equal((await post(gw, { ...chat('other model'), model: 'shared' })).cache, 'hit');
    await fetch(`${gw.url}/admin/cache`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${gw.masterKey}` },
    });
    assert.equal((await post(gw, { ...chat('other model'), model: 'shared' })).cache, 'miss');
  });

  test('cache metrics count hits and misses', async () => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(text, /switchyard_cache_hits_total\{tier="memory"\} [1-9]/);
    assert.match(text, /switchyard_cache_misses_total [1-9]/);
    assert.match(text, /switchyard_cache_memory_entries [1-9]/);
  });
});

describe('response cache across two gateways sharing Redis', () => {
  let redis: RedisService;
  let upstream: MockUpstream;
  let a: TestGateway;
  let b: TestGateway;
  before(async () => {
    [redis, upstream] = await Promise.all([startRedis(), startMockUpstream()]);
    const config = {
      ...cachedModels(upstream, { enabled: true, scope: 'global' }),
      storage: { redis_url: redis.url },
    };
    [a, b] = await Promise.all([startTestGateway({ config }), startTestGateway({ config })]);
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    await upstream.close();
    await redis.stop();
  });

  test("B serves A's answer from Redis", async () => {
    upstream.reset();
    const first = await post(a, chat('across instances'));
    assert.equal(first.cache, 'miss');
    // A's write to Redis is sent before its answer; B asks after the answer.
    const fromB = await post(b, chat('across instances'));
    assert.equal(fromB.cache, 'hit');
    assert.deepEqual(fromB.body, first.body);
    assert.equal(upstream.requests.length, 1);
  });

  test('identical misses on two instances make one upstream call; a failed holder lets the other compute', async () => {
    upstream.reset();
    upstream.setDefault({ slowFirstByteMs: 300 });
    try {
      const fromA = post(a, chat('one computation for the fleet'));
      // B asks once A's request is upstream (A holds the shared lock by then).
      await upstream.waitForRequests(1);
      const fromB = await post(b, chat('one computation for the fleet'));
      assert.equal((await fromA).cache, 'miss');
      assert.equal(fromB.cache, 'hit');
      assert.deepEqual(fromB.body, (await fromA).body);
      assert.equal(upstream.requests.length, 1);

      upstream.reset();
      upstream.enqueue({ kind: 'status', status: 500, slowFirstByteMs: 300 });
      const failing = post(a, chat('the holder fails'));
      await upstream.waitForRequests(1);
      const fromB2 = await post(b, chat('the holder fails'));
      assert.equal((await failing).status, 502);
      assert.equal(fromB2.status, 200);
      assert.equal(fromB2.cache, 'miss');
      assert.equal(upstream.requests.length, 2);
    } finally {
      upstream.setDefault(undefined);
    }
  });

  test("DELETE /admin/cache on A empties B's memory too", async () => {
    upstream.reset();
    const body = chat('invalidated everywhere');
    assert.equal((await post(a, body)).cache, 'miss');
    // B reads it from Redis, which puts it in B's memory.
    assert.equal((await post(b, body)).cache, 'hit');
    const res = await fetch(`${a.url}/admin/cache?model=cached`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${a.masterKey}` },
    });
    const answer = (await res.json()) as { deleted: Record<string, number>; instances: number };
    assert.equal(answer.instances, 2, 'both instances subscribed heard it');
    // B drops it when the message arrives: ask (bounded) until it no longer hits.
    let cache: string | null = 'hit';
    await pollUntil(
      'B dropped the invalidated answer',
      async () => {
        cache = (await post(b, body)).cache;
        return cache !== 'hit';
      },
      { attempts: 100, intervalMs: 10 },
    );
    assert.equal(cache, 'miss');
    assert.equal(upstream.requests.length, 2);
  });

  test('Redis lost: answers go on from upstream and memory, health is degraded, and it recovers', async () => {
    upstream.reset();
    await redis.halt();
    const during = await post(a, chat('during the outage'));
    assert.equal(during.status, 200);
    assert.equal(during.cache, 'miss');
    assert.equal((await post(a, chat('during the outage'))).cache, 'hit', 'memory still serves');
    const health = (await (await fetch(`${a.url}/health`)).json()) as { status: string };
    assert.equal(health.status, 'degraded');
    await redis.resume();
    const healthy = async (gw: TestGateway) =>
      ((await (await fetch(`${gw.url}/health`)).json()) as { status: string }).status === 'ok';
    await pollUntil('A healthy again', () => healthy(a));
    await pollUntil('B healthy again', () => healthy(b));
    assert.equal((await post(a, chat('after the outage'))).cache, 'miss');
    assert.equal((await post(b, chat('after the outage'))).cache, 'hit', 'shared again through Redis');
    assert.equal(upstream.requests.length, 2);
  });
});
