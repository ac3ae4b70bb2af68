/**
 * The semantic cache's parts without a gateway: the vector index (nearest,
 * partitions, expiry, eviction, removal keeping rows aligned) and which
 * requests are compared, within which partition.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cosine, normalize } from '../../src/cache/semantic/embedder.ts';
import { LexicalEmbedder } from '../../src/cache/semantic/lexical-embedder.ts';
import { type SemanticSettings, semanticPrompt } from '../../src/cache/semantic/semantic-prompt.ts';
import { type IndexedPrompt, VectorIndex } from '../../src/cache/semantic/vector-index.ts';
import { seededRandom } from '../../src/util/random.ts';

const unit = (...values: number[]) => normalize(Float32Array.from(values));
const prompt = (
  hash: string,
  vector: Float32Array,
  partition = 'p',
  expiresAt = 1_000,
  model = 'm',
): IndexedPrompt => ({
  key: { model, scope: 'key:a', hash },
  partition,
  vector,
  expiresAt,
});

describe('vector index', () => {
  test('the nearest prompt at or above the threshold, in its partition only', () => {
    const index = new VectorIndex({ maxEntries: 10 });
    index.add(prompt('a', unit(1, 0, 0)));
    index.add(prompt('b', unit(1, 0.2, 0)));
    index.add(prompt('c', unit(1, 0.05, 0), 'other'));
    const query = unit(1, 0.1, 0);
    assert.equal(index.nearest('p', query, 0.9, 0)?.prompt.key.hash, 'b');
    assert.ok(Math.abs(index.nearest('p', query, 0.9, 0)!.score - cosine(query, unit(1, 0.2, 0))) < 1e-6);
    assert.equal(index.nearest('p', unit(0, 1, 0), 0.9, 0), undefined);
    assert.equal(index.nearest('nowhere', query, 0.1, 0), undefined);
    // Expired prompts are never returned.
    assert.equal(index.nearest('p', query, 0.9, 1_000), undefined);
  });

  test('removal keeps every other vector with its own prompt (swap-remove)', () => {
    const index = new VectorIndex({ maxEntries: 100 });
    const vectors = Array.from({ length: 20 }, (_, i) => unit(Math.cos(i / 3), Math.sin(i / 3), 0.01 * i));
    for (const [i, v] of vectors.entries()) index.add(prompt(String(i), v));
    for (const i of [0, 7, 19, 3]) assert.ok(index.remove(`m:key%3Aa:${i}`));
    assert.equal(index.size, 16);
    vectors.forEach((v, i) => {
      const found = index.nearest('p', v, 0.99999, 0);
      if ([0, 7, 19, 3].includes(i)) assert.notEqual(found?.prompt.key.hash, String(i));
      else assert.equal(found?.prompt.key.hash, String(i), `prompt ${i} found by its own vector`);
    });
  });

  test('bounded: the oldest go first; the same key twice is one entry', () => {
    const index = new VectorIndex({ maxEntries: 3 });
    for (const hash of ['a', 'b', 'c', 'a', 'd']) index.add(prompt(hash, unit(1, hash.charCodeAt(0) / 100)));
    assert.equal(index.size, 3);
    assert.equal(index.nearest('p', unit(1, 0.98), 0.99999, 0), undefined, "'b' was the oldest");
    assert.equal(index.nearest('p', unit(1, 0.97), 0.99999, 0)?.prompt.key.hash, 'a');
  });

  test('invalidation by model and scope, sweeping by expiry, a new dimension replaces a partition', () => {
    const index = new VectorIndex({ maxEntries: 10 });
    index.add(prompt('a', unit(1, 0), 'p', 100, 'one'));
    index.add(prompt('b', unit(0, 1), 'p', 5_000, 'two'));
    index.add(prompt('c', unit(1, 1), 'q', 5_000, 'two'));
    assert.equal(index.invalidate({ model: 'one' }), 1);
    assert.equal(index.invalidate({ scope: 'key:other' }), 0);
    assert.equal(index.sweep(6_000), 2);
    assert.equal(index.size, 0);
    index.add(prompt('d', unit(1, 0)));
    index.add(prompt('e', unit(1, 0, 0)));
    assert.equal(index.size, 1);
    assert.equal(index.nearest('p', unit(1, 0, 0), 0.9, 0)?.prompt.key.hash, 'e');
    assert.equal(index.nearest('p', unit(1, 0), 0.9, 0), undefined);
  });
});

describe('vector index past APPROXIMATE_ABOVE (hashing tables)', () => {
  // Deterministic vectors: lexical embeddings of distinct prompts, and planted neighbours near them.
  const embedder = new LexicalEmbedder();
  const base = Array.from({ length: 1_500 }, (_, i) =>
    embedder.embedNow(`order ${i} shipped to city ${i % 37} with item ${i % 11}`),
  );
  const random = seededRandom(11);
  const near = (v: Float32Array) => {
    const noise = normalize(Float32Array.from(v, () => random() - 0.5));
    return normalize(Float32Array.from(v, (x, i) => x + 0.2 * noise[i]!));
  };

  test('finds what the flat scan finds, before and after the tables are built', () => {
    const flat = new VectorIndex({ maxEntries: 10_000, approximateAbove: Number.POSITIVE_INFINITY });
    const hashed = new VectorIndex({ maxEntries: 10_000 });
    const queries = [0, 10, 499, 700, 1_200, 1_499].map((i) => ({ i, q: near(base[i]!) }));
    for (const [i, v] of base.entries()) {
      flat.add(prompt(String(i), v));
      hashed.add(prompt(String(i), v));
      // Checked below the threshold (flat in both) and above it (tables built at 513 prompts).
      if (i === 400 || i === base.length - 1) {
        for (const { i: target, q } of queries) {
          if (target > i) continue;
          const expected = flat.nearest('p', q, 0.9, 0);
          assert.ok(expected !== undefined && cosine(q, base[target]!) > 0.95);
          assert.equal(hashed.nearest('p', q, 0.9, 0)?.prompt.key.hash, expected.prompt.key.hash);
        }
      }
    }
    assert.equal(hashed.nearest('p', embedder.embedNow('something else entirely'), 0.9, 0), undefined);
  });

  test('removed and evicted prompts leave the tables too', () => {
    const index = new VectorIndex({ maxEntries: 1_000 });
    for (const [i, v] of base.entries()) index.add(prompt(String(i), v));
    assert.equal(index.size, 1_000);
    // The first 500 were evicted: never found, even by their own vectors.
    for (const i of [0, 250, 499]) assert.equal(index.nearest('p', base[i]!, 0.999, 0), undefined);
    assert.equal(index.nearest('p', base[900]!, 0.999, 0)?.prompt.key.hash, '900');
    assert.ok(index.remove('m:key%3Aa:900'));
    assert.equal(index.nearest('p', base[900]!, 0.999, 0), undefined);
    assert.equal(index.invalidate({ model: 'm' }), 999);
    assert.equal(index.nearest('p', base[1_200]!, 0.5, 0), undefined);
  });
});

describe('which requests are compared', () => {
  const on: SemanticSettings = {
    enabled: true,
    threshold: 0.95,
    embedder: 'lexical',
    max_turns: 3,
    tools: false,
  };
  const chat = (content: unknown, extra: Record<string, unknown> = {}) => ({
    model: 'm',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content },
    ],
    ...extra,
  });

  test('the last user message is the prompt; everything else is the partition', () => {
    const a = semanticPrompt('chat', chat('How do I reset my password?'), 'm', 'key:a', on)!;
    const b = semanticPrompt('chat', chat('how can i reset my password'), 'm', 'key:a', on)!;
    assert.equal(a.text, 'How do I reset my password?');
    assert.equal(a.partition, b.partition);
    for (const [body, scope] of [
      [chat('How do I reset my password?', { temperature: 0 }), 'key:a'],
      [chat('How do I reset my password?'), 'key:b'],
      [
        {
          ...chat('x'),
          messages: [
            { role: 'system', content: 'Be long.' },
            { role: 'user', content: 'x' },
          ],
        },
        'key:a',
      ],
    ] as const) {
      assert.notEqual(semanticPrompt('chat', body, 'm', scope, on)?.partition, a.partition);
    }
    const parts = semanticPrompt(
      'chat',
      chat([
        { type: 'text', text: 'one' },
        { type: 'text', text: 'two' },
      ]),
      'm',
      's',
      on,
    );
    assert.equal(parts?.text, 'one\ntwo');
  });

  test('not compared: off, embeddings, tools, long conversations, images, an assistant last, empty text', () => {
    const tools = [{ type: 'function', function: { name: 'f' } }];
    const long = {
      model: 'm',
      messages: ['1', '2', '3', '4'].flatMap((n) => [
        { role: 'user', content: n },
        { role: 'assistant', content: n },
      ]),
    };
    long.messages.pop();
    const cases: [string, object, SemanticSettings][] = [
      ['off', chat('x'), { ...on, enabled: false }],
      ['tools', chat('x', { tools }), on],
      ['four user turns', long, on],
      ['an image', chat([{ type: 'image_url', image_url: { url: 'data:' } }]), on],
      ['empty', chat('   '), on],
      [
        'assistant last',
        {
          model: 'm',
          messages: [
            { role: 'user', content: 'a' },
            { role: 'assistant', content: 'b' },
          ],
        },
        on,
      ],
    ];
    for (const [name, body, settings] of cases) {
      assert.equal(semanticPrompt('chat', body, 'm', 's', settings), undefined, name);
    }
    assert.equal(semanticPrompt('embeddings', { model: 'm', input: 'x' }, 'm', 's', on), undefined);
    assert.notEqual(
      semanticPrompt('chat', chat('x', { tools }), 'm', 's', { ...on, tools: true }),
      undefined,
    );
  });

  test('the lexical embedder is versioned by name and deterministic', () => {
    const e = new LexicalEmbedder();
    assert.match(e.name, /^lexical-v\d+-\d+$/);
    assert.deepEqual(e.embedNow('Hello world'), new LexicalEmbedder().embedNow('Hello world'));
  });
});
