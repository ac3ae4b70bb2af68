/**
 * The semantic cache end to end: a reworded prompt is served an earlier
 * answer (header, ledger, one upstream call), near-misses and other
 * partitions are not, tools and long conversations stay exact-only, the
 * index is shared between two gateways through Redis, and an embeddings model
 * the gateway serves can be the embedder (billed, and a failing one only
 * costs the semantic lookup).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { type SpawnedGateway, spawnGateway, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';
import { type RedisService, startRedis } from '../helpers/services.ts';

const UPSTREAM_KEY = 'sk-CANARY-semantic-0123456789';
const SEMANTIC = { enabled: true, semantic: { enabled: true } };

function semanticModels(upstream: MockUpstream) {
  return {
    providers: { up: { type: 'openai', base_url: upstream.baseUrl, api_key: UPSTREAM_KEY } },
    models: {
      near: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }], retries: { max: 0 }, cache: SEMANTIC },
      exact: {
        targets: [{ provider: 'up', model: 'gpt-4o-mini' }],
        retries: { max: 0 },
        cache: { enabled: true },
      },
      served: {
        targets: [{ provider: 'up', model: 'gpt-4o-mini' }],
        retries: { max: 0 },
        cache: { enabled: true, semantic: { enabled: true, embedder: 'embed' } },
      },
      embed: { targets: [{ provider: 'up', model: 'text-embedding-3-small' }], retries: { max: 0 } },
    },
  };
}

async function ask(
  gw: TestGateway,
  content: string | null,
  extra: Record<string, unknown> = {},
): Promise<{
  status: number;
  cache: string | null;
  requestId: string | null;
  body: Record<string, unknown>;
}> {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'near',
      ...(content === null ? {} : { messages: [{ role: 'user', content }] }),
      ...extra,
    }),
  });
  return {
    status: res.status,
    cache: res.headers.get('x-switchyard-cache'),
    requestId: res.headers.get('x-request-id'),
    body: (await res.json()) as Record<string, unknown>,
  };
}

describe('semantic cache on one gateway (lexical embedder)', () => {
  let upstream: MockUpstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startMockUpstream();
    gw = await startTestGateway({ config: semanticModels(upstream) });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  test('a reworded prompt is a semantic hit: the first answer, one upstream call, a zero-cost row', async () => {
    upstream.reset();
    const first = await ask(gw, 'How do I reset my password?');
    assert.equal(first.cache, 'miss');
    const second = await ask(gw, 'how can I reset my passwords');
    assert.equal(second.status, 200);
    assert.equal(second.cache, 'semantic-hit');
    assert.deepEqual(second.body, first.body);
    assert.equal(upstream.requests.length, 1);
    const { ledger, database } = gw.gateway.context;
    await ledger.flush();
    const row = await database.db
      .selectFrom('usage_ledger')
      .select(['provider', 'cache_status', 'prompt_tokens', 'cost_micros'])
      .where('request_id', '=', String(second.requestId))
      .executeTakeFirstOrThrow();
    assert.deepEqual(row, {
      provider: 'cache',
      cache_status: 'semantic-hit',
      prompt_tokens: 0,
      cost_micros: 0,
    });
  });

  test('near-misses (another city, another number, a negation) go upstream', async () => {
    upstream.reset();
    const pairs = [
      ['What is the weather in Paris today?', 'What is the weather in London today?'],
      ['What is 15% of 200?', 'What is 15% of 300?'],
      ['Is it safe to take ibuprofen with alcohol?', 'Is it not safe to take ibuprofen with alcohol?'],
      ['Book a flight from Paris to London', 'Book a flight from London to Paris'],
    ];
    for (const [a, b] of pairs) {
      assert.equal((await ask(gw, a!)).cache, 'miss');
      assert.equal((await ask(gw, b!)).cache, 'miss', `${b} must not be served the answer to ${a}`);
    }
    assert.equal(upstream.requests.length, pairs.length * 2);
  });

  test('only the prompt may differ: system prompt, parameters and model keep answers apart', async () => {
    upstream.reset();
    const system = (content: string) => [
      { role: 'system', content },
      { role: 'user', content: 'Summarise the plot of Hamlet.' },
    ];
    assert.equal((await ask(gw, null, { messages: system('Answer in English.') })).cache, 'miss');
    assert.equal((await ask(gw, null, { messages: system('Answer in French.') })).cache, 'miss');
    assert.equal((await ask(gw, 'Summarise the plot of Macbeth', { temperature: 0 })).cache, 'miss');
    assert.equal((await ask(gw, 'summarise the plot of macbeth!', { temperature: 1 })).cache, 'miss');
    assert.equal((await ask(gw, 'summarise the plot of macbeth!', { temperature: 0 })).cache, 'semantic-hit');
    // A model without semantic caching never compares.
    assert.equal(
      (await ask(gw, 'Summarise the plot of Macbeth', { model: 'exact', temperature: 0 })).cache,
      'miss',
    );
    assert.equal(
      (await ask(gw, 'summarise the plot of macbeth', { model: 'exact', temperature: 0 })).cache,
      'miss',
    );
  });

  test("one key's prompts never answer another key's", async () => {
    const keyOf = async (name: string) => {
      const res = await fetch(`${gw.url}/admin/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name }),
      });
      return ((await res.json()) as { key: string }).key;
    };
    const [alice, bob] = await Promise.all([keyOf('alice'), keyOf('bob')]);
    const askAs = (key: string, content: string) =>
      fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'near', messages: [{ role: 'user', content }] }),
      }).then((res) => res.headers.get('x-switchyard-cache'));
    assert.equal(await askAs(alice, 'What is my account balance?'), 'miss');
    assert.equal(await askAs(bob, 'what is my account balance'), 'miss');
    assert.equal(await askAs(alice, 'What is my account balance'), 'semantic-hit');
  });

  test('requests with tools and long conversations are only cached exactly', async () => {
    const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }];
    assert.equal((await ask(gw, 'Find the order status for order 1234', { tools })).cache, 'miss');
    assert.equal((await ask(gw, 'find the order status for order 1234!', { tools })).cache, 'miss');
    const turns = (last: string) => [
      { role: 'user', content: 'one' },
      { role: 'assistant', content: 'a' },
      { role: 'user', content: 'two' },
      { role: 'assistant', content: 'b' },
      { role: 'user', content: 'three' },
      { role: 'assistant', content: 'c' },
      { role: 'user', content: last },
    ];
    assert.equal((await ask(gw, null, { messages: turns('What did I say first?') })).cache, 'miss');
    assert.equal((await ask(gw, null, { messages: turns('what did i say first') })).cache, 'miss');
    // Within max_turns (3 user turns), earlier turns identical: compared.
    const short = (last: string) => [
      { role: 'user', content: 'Name a colour.' },
      { role: 'assistant', content: 'Blue.' },
      { role: 'user', content: last },
    ];
    assert.equal((await ask(gw, null, { messages: short('Name another colour.') })).cache, 'miss');
    assert.equal((await ask(gw, null, { messages: short('name another colour') })).cache, 'semantic-hit');
  });

  test('no-store keeps a prompt out of the index; invalidation empties it', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${gw.masterKey}`,
        'content-type': 'application/json',
        'cache-control': 'no-store',
      },
      body: JSON.stringify({
        model: 'near',
        messages: [{ role: 'user', content: 'Spell the word necessary.' }],
      }),
    });
    assert.equal(res.status, 200);
    assert.equal((await ask(gw, 'spell the word necessary')).cache, 'miss');
    assert.equal((await ask(gw, 'Spell the word: necessary!')).cache, 'semantic-hit');
    const cleared = await fetch(`${gw.url}/admin/cache?model=near`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${gw.masterKey}` },
    });
    const body = (await cleared.json()) as { deleted: Record<string, number> };
    assert.ok((body.deleted['semantic'] ?? 0) >= 1, JSON.stringify(body));
    assert.equal((await ask(gw, 'Spell the word necessary, please')).cache, 'miss');
  });

  test('the Anthropic API is compared too, and a semantic hit replays as a stream', async () => {
    const client = new Anthropic({ apiKey: gw.masterKey, baseURL: gw.url, maxRetries: 0 });
    const first = await client.messages
      .create({
        model: 'near',
        max_tokens: 64,
        messages: [{ role: 'user', content: 'List three primary colours.' }],
      })
      .withResponse();
    assert.equal(first.response.headers.get('x-switchyard-cache'), 'miss');
    const stream = await client.messages
      .create({
        model: 'near',
        max_tokens: 64,
        stream: true,
        messages: [{ role: 'user', content: 'list three primary colours' }],
      })
      .withResponse();
    assert.equal(stream.response.headers.get('x-switchyard-cache'), 'semantic-hit');
    let text = '';
    for await (const event of stream.data) {
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
    }
    const firstText = first.data.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
    assert.equal(text, firstText);
  });

  test('a served embeddings model embeds the prompts, billed on its own ledger rows', async () => {
    upstream.reset();
    const first = await ask(gw, 'Name the largest planet.', { model: 'served' });
    assert.equal(first.cache, 'miss');
    assert.equal((await ask(gw, 'Name the largest planet.', { model: 'served' })).cache, 'hit');
    const embeds = upstream.requests.filter((r) => r.path.endsWith('/embeddings'));
    assert.equal(embeds.length, 1, 'one embedding for the miss (remembered with it), none for the exact hit');
    const { ledger, database } = gw.gateway.context;
    await ledger.flush();
    const rows = await database.db
      .selectFrom('usage_ledger')
      .select(['route', 'model_requested', 'key_id', 'status'])
      .where('route', '=', 'cache/semantic')
      .execute();
    assert.ok(rows.length >= 1);
    assert.deepEqual(rows[0], {
      route: 'cache/semantic',
      model_requested: 'embed',
      key_id: null,
      status: 'ok',
    });
  });
});

describe('semantic cache with a failing embedder', () => {
  test('the request is answered (a miss); the failure is counted', async () => {
    const upstream = await startMockUpstream();
    const models = semanticModels(upstream);
    // An embeddings model whose upstream is not there (nothing listens on port 9).
    const gw = await startTestGateway({
      config: {
        providers: {
          ...models.providers,
          gone: { type: 'openai', base_url: 'http://127.0.0.1:9/v1', api_key: 'k' },
        },
        models: {
          ...models.models,
          embed: { targets: [{ provider: 'gone', model: 'text-embedding-3-small' }], retries: { max: 0 } },
        },
      },
    });
    try {
      const res = await ask(gw, 'What is the boiling point of water?', { model: 'served' });
      assert.equal(res.status, 200);
      assert.equal(res.cache, 'miss');
      assert.ok((gw.gateway.context.semantic?.stats.errors ?? 0) >= 1);
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      assert.match(metrics, /switchyard_cache_semantic_lookups_total\{result="error"\} [1-9]/);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});

describe('semantic cache across two gateways sharing Redis', () => {
  let redis: RedisService;
  let upstream: MockUpstream;
  let a: TestGateway;
  let b: TestGateway;
  before(async () => {
    [redis, upstream] = await Promise.all([startRedis(), startMockUpstream()]);
    const config = { ...semanticModels(upstream), storage: { redis_url: redis.url } };
    [a, b] = await Promise.all([startTestGateway({ config }), startTestGateway({ config })]);
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    await upstream.close();
    await redis.stop();
  });

  test("B answers a reworded prompt with A's answer", async () => {
    upstream.reset();
    const first = await ask(a, 'What are the opening hours of the museum?');
    assert.equal(first.cache, 'miss');
    // B's index follows the shared stream: wait (bounded) until A's prompt reached it.
    const semanticB = b.gateway.context.semantic!;
    await pollUntil("B indexed A's prompt", async () => semanticB.size > 0, {
      attempts: 200,
      intervalMs: 10,
    });
    assert.equal(semanticB.size, 1);
    const second = await ask(b, 'what are the opening hours of the museum');
    assert.equal(second.cache, 'semantic-hit');
    assert.deepEqual(second.body, first.body);
    assert.equal(upstream.requests.length, 1);
  });

  test('a gateway started later loads the prompts remembered before it came', async () => {
    const config = { ...semanticModels(upstream), storage: { redis_url: redis.url } };
    const late = await startTestGateway({ config });
    try {
      const semantic = late.gateway.context.semantic!;
      await pollUntil('the late gateway loaded the stream', async () => semantic.size > 0, {
        attempts: 200,
        intervalMs: 10,
      });
      assert.ok(semantic.size >= 1);
      upstream.reset();
      assert.equal(
        (await ask(late, 'What are the opening hours of the museum, please?')).cache,
        'semantic-hit',
      );
      assert.equal(upstream.requests.length, 0);
    } finally {
      await late.close();
    }
  });
});

describe('two gateway processes sharing Redis', () => {
  let redis: RedisService;
  let upstream: MockUpstream;
  let a: SpawnedGateway;
  let b: SpawnedGateway;
  before(async () => {
    [redis, upstream] = await Promise.all([startRedis(), startMockUpstream()]);
    const config = { ...semanticModels(upstream), storage: { redis_url: redis.url } };
    a = await spawnGateway({ config });
    b = await spawnGateway({ config, masterKey: a.masterKey });
  });
  after(async () => {
    for (const gw of [a, b]) {
      gw.kill('SIGTERM');
      await gw.exited;
    }
    await upstream.close();
    await redis.stop();
  });

  const askProcess = async (gw: SpawnedGateway, content: string) => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'near', messages: [{ role: 'user', content }] }),
    });
    return { cache: res.headers.get('x-switchyard-cache'), body: await res.json() };
  };

  test("B serves A's answer, asked the same way and reworded; the upstream is called once", async () => {
    upstream.reset();
    const first = await askProcess(a, 'How tall is Mount Everest?');
    assert.equal(first.cache, 'miss');
    const same = await askProcess(b, 'How tall is Mount Everest?');
    assert.equal(same.cache, 'hit');
    assert.deepEqual(same.body, first.body);
    // B's index follows the shared stream: wait (bounded) until A's prompt is in it.
    let entries = 0;
    const indexed = async () => {
      const text = await (
        await fetch(`${b.url}/metrics`, { headers: { authorization: `Bearer ${b.masterKey}` } })
      ).text();
      entries = Number(/^switchyard_cache_semantic_entries (\d+)/m.exec(text)?.[1] ?? 0);
      return entries >= 1;
    };
    await pollUntil("process B indexed A's prompt", indexed, { attempts: 200, intervalMs: 10 });
    assert.equal(entries, 1);
    const reworded = await askProcess(b, 'how tall is mount everest');
    assert.equal(reworded.cache, 'semantic-hit');
    assert.deepEqual(reworded.body, first.body);
    assert.equal(upstream.requests.length, 1);
  });
});
