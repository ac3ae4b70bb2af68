/**
 * The response cache's parts: the key rule, the memory tier's bounds and
 * expiry, chunk replay and assembly, the request directives, and the
 * library's getOrCompute with single flight.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MessageAssembler, messageToEvents } from '../../src/api/anthropic/anthropic-replay.ts';
import { cacheKey, cacheKeyOfText, cacheScope, canonicalJson } from '../../src/cache/cache-key.ts';
import {
  cacheDirectives,
  cacheTtlMs,
  isCacheableCompletion,
  MAX_TTL_FACTOR,
} from '../../src/cache/cache-policy.ts';
import type { CacheEntry, CacheKey } from '../../src/cache/cache-store.ts';
import { CompletionAssembler, completionToChunks } from '../../src/cache/completion-chunks.ts';
import { MemoryCacheStore } from '../../src/cache/memory-cache-store.ts';
import { ResponseCache } from '../../src/cache/response-cache.ts';
import type { ChatCompletion } from '../../src/core/types.ts';

const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
const hashOf = (b: object, api: 'chat' | 'messages' | 'embeddings' = 'chat') =>
  cacheKey(api, b, 'm', 'global').hash;

describe('cache key', () => {
  test('remembered by body text: the key cacheKey computes, never another API, model or scope', () => {
    const text = JSON.stringify({ messages: [{ content: 'memo', role: 'user' }], model: 'm', seed: 7 });
    const parsed = () => JSON.parse(text) as object;
    const first = cacheKeyOfText('chat', parsed(), 'm', 'key:a', text);
    assert.deepEqual(first, cacheKey('chat', parsed(), 'm', 'key:a'));
    assert.equal(cacheKeyOfText('chat', parsed(), 'm', 'key:a', text), first, 'the remembered key');
    // The same text through another door, for another model or tenant: never the remembered key.
    for (const [api, model, scope] of [
      ['messages', 'm', 'key:a'],
      ['chat', 'm2', 'key:a'],
      ['chat', 'm', 'key:b'],
    ] as const) {
      const key = cacheKeyOfText(api, parsed(), model, scope, text);
      assert.deepEqual(key, cacheKey(api, parsed(), model, scope));
      assert.notDeepEqual(key, first);
    }
    // Past its bound it forgets the oldest and stays right; a long text is not remembered.
    for (let i = 0; i < 3000; i++) {
      const t = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: `n${i}` }] });
      assert.deepEqual(
        cacheKeyOfText('chat', JSON.parse(t), 'm', 'global', t),
        cacheKey('chat', JSON.parse(t), 'm', 'global'),
      );
    }
    const long = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(10_000) }] });
    assert.deepEqual(
      cacheKeyOfText('chat', JSON.parse(long), 'm', 'global', long),
      cacheKey('chat', JSON.parse(long), 'm', 'global'),
    );
  });

  test('key order does not matter, at any depth', () => {
    assert.equal(
      hashOf({ messages: [{ content: 'hi', role: 'user' }], model: 'm', temperature: 0 }),
      hashOf({ model: 'm', temperature: 0, messages: [{ role: 'user', content: 'hi' }] }),
    );
    assert.equal(
      canonicalJson({ b: 1, a: { d: 2, c: [3, { f: 4, e: 5 }] } }),
      '{"a":{"c":[3,{"e":5,"f":4}],"d":2},"b":1}',
    );
  });

  test('every output-changing field changes it; an omitted one differs from its default', () => {
    const changes: Record<string, unknown>[] = [
      { temperature: 1 },
      { temperature: null },
      { top_p: 1 },
      { max_tokens: 10 },
      { max_completion_tokens: 10 },
      { stop: 'x' },
      { seed: 1 },
      { n: 1 },
      { logit_bias: {} },
      { tools: [] },
      { tool_choice: 'auto' },
      { response_format: { type: 'text' } },
      { reasoning_effort: 'low' },
      { messages: [{ role: 'user', content: 'hi!' }] },
      { model: 'other' },
    ];
    const seen = new Set([hashOf(body)]);
    for (const change of changes) {
      const hash = hashOf({ ...body, ...change });
      assert.ok(!seen.has(hash), `${JSON.stringify(change)} must change the key`);
      seen.add(hash);
    }
  });

  test('delivery and identity fields do not; the API does', () => {
    for (const volatile of [
      { stream: true },
      { stream_options: { include_usage: true } },
      { user: 'u' },
      { metadata: { a: 1 } },
    ]) {
      assert.equal(hashOf({ ...body, ...volatile }), hashOf(body));
    }
    assert.notEqual(hashOf(body, 'messages'), hashOf(body));
    assert.equal(hashOf({ ...body, stream: true }, 'messages'), hashOf(body, 'messages'));
    assert.notEqual(hashOf({ ...body, system: 'be brief' }, 'messages'), hashOf(body, 'messages'));
  });

  test('scopes: per key by default, a team scope never wider than the key without a team', () => {
    const key = { id: 'key_1', isMaster: false };
    assert.equal(cacheScope('key', key), 'key:key_1');
    assert.equal(cacheScope('team', key), 'key:key_1');
    assert.equal(cacheScope('team', { ...key, teamId: 't1' }), 'team:t1');
    assert.equal(cacheScope('global', key), 'global');
    assert.equal(cacheScope('key', { id: 'x', isMaster: true }), 'key:master');
  });
});

describe('cache policy', () => {
  test('directives from headers', () => {
    assert.deepEqual(cacheDirectives({}), { lookup: true, store: true, ttlS: undefined });
    assert.deepEqual(cacheDirectives({ 'cache-control': 'No-Cache' }), {
      lookup: false,
      store: true,
      ttlS: undefined,
    });
    assert.deepEqual(cacheDirectives({ 'cache-control': 'max-age=0, no-store' }), {
      lookup: false,
      store: false,
      ttlS: undefined,
    });
    assert.equal(cacheDirectives({ 'x-switchyard-cache-ttl': '60' }).ttlS, 60);
    for (const bad of ['0', '-1', '1.5', 'abc', String(31 * 24 * 3600)]) {
      assert.throws(() => cacheDirectives({ 'x-switchyard-cache-ttl': bad }), /x-switchyard-cache-ttl/);
    }
  });

  test('token-aware lifetimes, bounded; an asked lifetime wins', () => {
    assert.equal(cacheTtlMs(100, undefined, 0), 100_000);
    assert.equal(cacheTtlMs(100, undefined, 1000), 200_000);
    assert.equal(cacheTtlMs(100, undefined, 1_000_000), 100_000 * MAX_TTL_FACTOR);
    assert.equal(cacheTtlMs(100, 5, 1000), 5_000);
  });

  test('only whole, unrefused answers are cacheable', () => {
    const answer = (finish: string, extra: Record<string, unknown> = {}) =>
      ({
        choices: [
          { index: 0, message: { role: 'assistant', content: 'x', ...extra }, finish_reason: finish },
        ],
      }) as unknown as ChatCompletion;
    assert.equal(isCacheableCompletion(answer('stop')), true);
    assert.equal(isCacheableCompletion(answer('tool_calls')), true);
    assert.equal(isCacheableCompletion(answer('length')), false);
    assert.equal(isCacheableCompletion(answer('content_filter')), false);
    assert.equal(isCacheableCompletion(answer('stop', { refusal: 'no' })), false);
  });
});

const completion: ChatCompletion = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'm',
  choices: [
    {
      index: 0,
      message: {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
          { id: 'call_2', type: 'function', function: { name: 'time', arguments: '{}' } },
        ],
      },
      finish_reason: 'tool_calls',
    },
  ],
  usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
};

describe('completion chunks', () => {
  test('replay then assembly gives the completion back (tool calls, usage)', () => {
    const chunks = completionToChunks(completion, true);
    assert.equal(chunks.at(-1)?.usage?.total_tokens, 12);
    const assembler = new CompletionAssembler();
    for (const chunk of chunks) assembler.observe(chunk);
    assert.deepEqual(assembler.completion(), completion);
  });

  test('no usage chunk unless asked; content split across chunks is joined', () => {
    assert.equal(
      completionToChunks(completion, false).some((c) => c.usage),
      false,
    );
    const assembler = new CompletionAssembler();
    for (const content of ['Hel', 'lo']) {
      assembler.observe({
        id: 'c',
        object: 'chat.completion.chunk',
        created: 2,
        model: 'm',
        choices: [{ index: 0, delta: { content }, finish_reason: null }],
      });
    }
    assembler.observe({
      id: 'c',
      object: 'chat.completion.chunk',
      created: 2,
      model: 'm',
      choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
    });
    assert.equal(assembler.completion().choices[0]?.message.content, 'Hello');
  });
});

describe('anthropic message replay', () => {
  const message = {
    id: 'msg_1',
    type: 'message' as const,
    role: 'assistant' as const,
    model: 'fast',
    content: [
      { type: 'thinking' as const, thinking: 'Let me see.', signature: 'sig' },
      { type: 'text' as const, text: 'Calling the tool.' },
      { type: 'tool_use' as const, id: 'toolu_1', name: 'weather', input: { city: 'Oslo', days: [1, 2] } },
    ],
    stop_reason: 'tool_use' as const,
    stop_sequence: null,
    usage: { input_tokens: 12, output_tokens: 34 },
  };

  test('events then assembly give the message back', () => {
    const events = messageToEvents(message);
    const block = ['content_block_start', 'content_block_delta', 'content_block_stop'];
    assert.deepEqual(
      events.map((e) => e.type),
      [
        'message_start',
        // Thinking: its text, then its signature.
        'content_block_start',
        'content_block_delta',
        'content_block_delta',
        'content_block_stop',
        ...block,
        ...block,
        'message_delta',
        'message_stop',
      ],
    );
    const assembler = new MessageAssembler('fast');
    for (const event of events) assembler.observe(event);
    assert.deepEqual(assembler.message(), message);
  });

  test('no message until the stream ended, nor with broken tool input', () => {
    const events = messageToEvents(message);
    const cut = new MessageAssembler('fast');
    for (const event of events.slice(0, -1)) cut.observe(event);
    assert.equal(cut.message(), undefined);
    const broken = new MessageAssembler('fast');
    for (const event of events) {
      if (event.type === 'content_block_delta' && event.delta.type === 'input_json_delta') {
        broken.observe({ ...event, delta: { type: 'input_json_delta', partial_json: '{"city":' } });
      } else broken.observe(event);
    }
    assert.equal(broken.message(), undefined);
  });
});

const key = (hash: string, model = 'm', scope = 'global'): CacheKey => ({ model, scope, hash });
const entry = (body: string, expiresAt: number, model = 'm', scope = 'global'): CacheEntry => ({
  body,
  model,
  scope,
  storedAt: 0,
  expiresAt,
  promptTokens: 1,
  completionTokens: 2,
});

describe('memory cache store', () => {
  test('entries expire by the clock', async () => {
    let now = 1000;
    const store = new MemoryCacheStore({ maxBytes: 1 << 20, clock: () => now });
    await store.set(key('a'), entry('"x"', 2000));
    assert.equal((await store.get(key('a')))?.body, '"x"');
    now = 2000;
    assert.equal(await store.get(key('a')), undefined);
    assert.equal(store.entries, 0);
    assert.equal(store.bytes, 0);
  });

  test('bounded in bytes, least recently used evicted first', async () => {
    const text = 'x'.repeat(1000);
    const store = new MemoryCacheStore({ maxBytes: 3 * 1400 });
    for (const name of ['a', 'b', 'c']) await store.set(key(name), entry(text, Number.MAX_SAFE_INTEGER));
    await store.get(key('a'));
    await store.set(key('d'), entry(text, Number.MAX_SAFE_INTEGER));
    assert.ok(store.bytes <= 3 * 1400);
    assert.equal(await store.get(key('b')), undefined, 'b was the least recently used');
    assert.ok(await store.get(key('a')));
    await store.set(key('huge'), entry('x'.repeat(10_000), Number.MAX_SAFE_INTEGER));
    assert.equal(await store.get(key('huge')), undefined, 'larger than the whole cache: not kept');
    assert.ok(await store.get(key('a')), 'and nothing evicted for it');
  });

  test('the least recently used goes first whatever the order of hits (the newest one is not moved)', async () => {
    const text = 'x'.repeat(1000);
    const store = new MemoryCacheStore({ maxBytes: 3 * 1400 });
    const put = (name: string) => store.set(key(name), entry(text, Number.MAX_SAFE_INTEGER));
    for (const name of ['a', 'b', 'c']) await put(name);
    for (const name of ['c', 'c', 'a', 'c', 'b', 'b']) assert.ok(await store.get(key(name)), name);
    // Used last to first: b, c, a. Two more entries evict a, then c.
    await put('d');
    assert.equal(await store.get(key('a')), undefined, 'a was the least recently used');
    await put('e');
    assert.equal(await store.get(key('c')), undefined, 'then c');
    assert.ok(await store.get(key('b')));
    // The newest entry removed by invalidation: the next hit still orders correctly.
    assert.equal(await store.invalidate({}), 3);
    for (const name of ['f', 'g', 'h']) await put(name);
    assert.ok(await store.get(key('f')));
    await put('i');
    assert.equal(await store.get(key('g')), undefined, 'g, not f, was the least recently used');
  });

  test('invalidation by model and scope', async () => {
    const store = new MemoryCacheStore({ maxBytes: 1 << 20 });
    await store.set(key('1', 'm1', 'key:a'), entry('1', Number.MAX_SAFE_INTEGER, 'm1', 'key:a'));
    await store.set(key('2', 'm1', 'key:b'), entry('2', Number.MAX_SAFE_INTEGER, 'm1', 'key:b'));
    await store.set(key('3', 'm2', 'key:a'), entry('3', Number.MAX_SAFE_INTEGER, 'm2', 'key:a'));
    assert.equal(await store.invalidate({ model: 'm1', scope: 'key:a' }), 1);
    assert.equal(await store.invalidate({ scope: 'key:a' }), 1);
    assert.equal(await store.invalidate({}), 1);
    assert.equal(store.entries, 0);
  });
});

describe('ResponseCache.getOrCompute', () => {
  test('computes once for concurrent callers, then serves the stored value', async () => {
    const cache = new ResponseCache([new MemoryCacheStore({ maxBytes: 1 << 20 })]);
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const compute = async () => {
      calls++;
      await gate;
      return { answer: 42 };
    };
    const all = Array.from({ length: 10 }, () => cache.getOrCompute({ key: 'q', compute, ttlMs: 60_000 }));
    release();
    assert.deepEqual(await Promise.all(all), Array(10).fill({ answer: 42 }));
    assert.deepEqual(await cache.getOrCompute({ key: 'q', compute, ttlMs: 60_000 }), { answer: 42 });
    assert.equal(calls, 1);
    assert.equal(cache.stats.coalesced, 9);
  });

  test('a failed computation is not cached and its waiters compute for themselves', async () => {
    const cache = new ResponseCache([new MemoryCacheStore({ maxBytes: 1 << 20 })]);
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const leader = cache.getOrCompute({
      key: 'q',
      ttlMs: 1000,
      compute: async () => {
        calls++;
        await gate;
        throw new Error('upstream down');
      },
    });
    const follower = cache.getOrCompute({
      key: 'q',
      ttlMs: 1000,
      compute: async () => {
        calls++;
        return 'second try';
      },
    });
    release();
    await assert.rejects(leader, /upstream down/);
    assert.equal(await follower, 'second try');
    assert.equal(calls, 2);
  });
});
