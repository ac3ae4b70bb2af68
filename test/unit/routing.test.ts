/**
 * The Router in process: strategies, capacity shedding and roles. Randomness
 * is seeded and the capacity clock is a variable, so every number here is
 * reproducible. Conditions, selectors and nested groups: routing-rules.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GatewayError } from '../../src/core/errors.ts';
import type { ChatRequest } from '../../src/core/types.ts';
import { CALLER, HELLO, ids, setup } from '../helpers/router-setup.ts';

describe('weighted', () => {
  test('10,000 decisions split within 2 points of the weights; the rest follow heaviest first', () => {
    const { router, route } = setup({
      m: {
        strategy: 'weighted',
        targets: [
          { provider: 'a', model: 'x', weight: 70 },
          { provider: 'b', model: 'x', weight: 20 },
          { provider: 'c', model: 'x', weight: 10 },
        ],
      },
    });
    const firsts = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const order = ids(router, route('m'));
      firsts.set(order[0]!, (firsts.get(order[0]!) ?? 0) + 1);
      assert.equal(order.length, 3);
      const rest = order.slice(1);
      const expectedRest = ['a/x', 'b/x', 'c/x'].filter((id) => id !== order[0]);
      assert.deepEqual(rest, expectedRest);
    }
    for (const [id, weight] of [
      ['a/x', 70],
      ['b/x', 20],
      ['c/x', 10],
    ] as const) {
      const share = ((firsts.get(id) ?? 0) / 10_000) * 100;
      assert.ok(Math.abs(share - weight) <= 2, `${id}: ${share}% vs ${weight}%`);
    }
  });
});

describe('least-latency', () => {
  test('two targets 20 ms apart: > 80% to the faster, the slower still probed', () => {
    const { router, route, table } = setup({
      m: {
        strategy: 'least-latency',
        targets: [
          { provider: 'a', model: 'slow' },
          { provider: 'b', model: 'fast' },
        ],
      },
    });
    const [slow, fast] = table.get('m')!.targets;
    // Unknown targets are explored first.
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const first = router.decide(route('m'), HELLO, CALLER).candidates[0]!;
      seen.add(first.id);
      router.onAttemptEnd(first, { ok: true, latencyMs: first === slow ? 120 : 100 });
    }
    assert.deepEqual([...seen].sort(), ['a/slow', 'b/fast']);
    let toFast = 0;
    let toSlow = 0;
    for (let i = 0; i < 2_000; i++) {
      const first = router.decide(route('m'), HELLO, CALLER).candidates[0]!;
      if (first === fast) toFast++;
      else toSlow++;
      // Keep feeding observations, so the averages stay 20 ms apart.
      router.onAttemptEnd(first, { ok: true, latencyMs: first === slow ? 120 : 100 });
    }
    assert.ok(toFast / 2_000 > 0.8, `fast got ${toFast}`);
    assert.ok(toSlow > 0, 'the slower target is still probed');
  });

  test('streams are ranked by time to first token', () => {
    const { router, route, table } = setup({
      m: {
        strategy: 'least-latency',
        targets: [
          { provider: 'a', model: 'x' },
          { provider: 'b', model: 'x' },
        ],
      },
    });
    const [a, b] = table.get('m')!.targets;
    // a: fast to first token, slow overall; b: the reverse.
    for (let i = 0; i < 5; i++) {
      router.onAttemptEnd(a!, { ok: true, latencyMs: 900, ttftMs: 50 });
      router.onAttemptEnd(b!, { ok: true, latencyMs: 300, ttftMs: 250 });
    }
    const stream = { ...HELLO, stream: true };
    let aFirst = 0;
    for (let i = 0; i < 500; i++) if (router.decide(route('m'), stream, CALLER).candidates[0] === a) aFirst++;
    assert.ok(aFirst > 400, `stream: a first ${aFirst}/500`);
    let bFirst = 0;
    for (let i = 0; i < 500; i++) if (router.decide(route('m'), HELLO, CALLER).candidates[0] === b) bFirst++;
    assert.ok(bFirst > 400, `json: b first ${bFirst}/500`);
  });

  test('failures count as slow', () => {
    const { router, route, table } = setup({
      m: {
        strategy: 'least-latency',
        targets: [
          { provider: 'a', model: 'x' },
          { provider: 'b', model: 'x' },
        ],
      },
    });
    const [a, b] = table.get('m')!.targets;
    router.onAttemptEnd(a!, { ok: false, errorCode: 'upstream_error', latencyMs: 5 });
    router.onAttemptEnd(b!, { ok: true, latencyMs: 200 });
    assert.deepEqual(ids(router, route('m')).length, 2);
    let bFirst = 0;
    for (let i = 0; i < 200; i++) if (router.decide(route('m'), HELLO, CALLER).candidates[0] === b) bFirst++;
    assert.ok(bFirst > 160, `b first ${bFirst}/200`);
  });
});

describe('cost', () => {
  const models = {
    m: {
      strategy: 'cost',
      targets: [
        { provider: 'a', model: 'premium', input_per_mtok: 5, output_per_mtok: 15 },
        {
          provider: 'b',
          model: 'cheap-text',
          input_per_mtok: 0.1,
          output_per_mtok: 0.2,
          tools: false,
          vision: false,
          context_window: 1000,
        },
        { provider: 'c', model: 'mid', input_per_mtok: 1, output_per_mtok: 2, vision: false },
        { provider: 'local', model: 'gpt-4o-mini' }, // built-in table: 0.15 / 0.6
      ],
    },
  };

  test('cheapest first, the rest by price', () => {
    const { router, route } = setup(models);
    assert.deepEqual(ids(router, route('m')), ['b/cheap-text', 'local/gpt-4o-mini', 'c/mid', 'a/premium']);
  });

  test('tools exclude targets declared without them', () => {
    const { router, route } = setup(models);
    const request: ChatRequest = {
      ...HELLO,
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
    };
    assert.deepEqual(ids(router, route('m'), request), ['local/gpt-4o-mini', 'c/mid', 'a/premium']);
  });

  test('images exclude targets declared without vision', () => {
    const { router, route } = setup(models);
    const request: ChatRequest = {
      ...HELLO,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          ],
        },
      ],
    };
    assert.deepEqual(ids(router, route('m'), request), ['local/gpt-4o-mini', 'a/premium']);
  });

  test('prompt + max_tokens beyond a context window excludes that target', () => {
    const { router, route } = setup(models);
    const request: ChatRequest = { ...HELLO, max_tokens: 2000 };
    assert.deepEqual(ids(router, route('m'), request), ['local/gpt-4o-mini', 'c/mid', 'a/premium']);
    const long: ChatRequest = { ...HELLO, messages: [{ role: 'user', content: 'word '.repeat(1000) }] };
    assert.equal(ids(router, route('m'), long)[0], 'local/gpt-4o-mini');
  });

  test('no capable target is a clear 400', () => {
    const { router, route } = setup({
      m: { strategy: 'cost', targets: [{ provider: 'a', model: 'x', tools: false }] },
    });
    const request: ChatRequest = { ...HELLO, tools: [{ type: 'function', function: { name: 'f' } }] };
    assert.throws(
      () => router.decide(route('m'), request, CALLER),
      (error: unknown) =>
        GatewayError.is(error) && error.status === 400 && /model 'm' supports tools/.test(error.message),
    );
  });
});

describe('capacity and roles', () => {
  test('a target at 80% of its rpm moves behind the others; below it keeps its place', () => {
    let now = 1_000_000;
    const { router, route, table } = setup(
      {
        m: {
          targets: [
            { provider: 'a', model: 'x', limits: { rpm: 10 } },
            { provider: 'b', model: 'x' },
          ],
        },
      },
      { now: () => now },
    );
    const a = table.get('m')!.targets[0]!;
    for (let i = 0; i < 7; i++) router.onAttemptStart(a, 10);
    assert.deepEqual(ids(router, route('m')), ['a/x', 'b/x']);
    router.onAttemptStart(a, 10);
    assert.deepEqual(ids(router, route('m')), ['b/x', 'a/x']);
    // The bucket drains at rpm/60 per second: 12 s later a is at 6/10 again.
    now += 12_000;
    assert.deepEqual(ids(router, route('m')), ['a/x', 'b/x']);
  });

  test('tpm counts estimated tokens; shed_at is configurable; all saturated keeps strategy order', () => {
    const now = 5_000;
    const { router, route, table } = setup(
      {
        m: {
          shed_at: 0.5,
          targets: [
            { provider: 'a', model: 'x', limits: { tpm: 1000 } },
            { provider: 'b', model: 'x', limits: { rpm: 100, burst: 4 } },
          ],
        },
      },
      { now: () => now },
    );
    const [a, b] = table.get('m')!.targets;
    router.onAttemptStart(a!, 499);
    assert.deepEqual(ids(router, route('m')), ['a/x', 'b/x']);
    router.onAttemptStart(a!, 1);
    assert.deepEqual(ids(router, route('m')), ['b/x', 'a/x']);
    router.onAttemptStart(b!, 10);
    router.onAttemptStart(b!, 10);
    assert.deepEqual(ids(router, route('m')), ['a/x', 'b/x']);
  });

  test('secondary only when every primary is saturated, deactivated or unavailable; backup last', () => {
    const down = new Set<string>();
    const { router, route, table } = setup(
      {
        m: {
          strategy: 'weighted',
          targets: [
            { provider: 'c', model: 'backup', role: 'backup', weight: 50 },
            { provider: 'b', model: 'second', role: 'secondary', weight: 50 },
            { provider: 'a', model: 'p1', limits: { rpm: 5 } },
            { provider: 'a', model: 'p2' },
          ],
        },
      },
      { isAvailable: (id) => !down.has(id), now: () => 0 },
    );
    for (let i = 0; i < 50; i++) {
      const order = ids(router, route('m'));
      assert.ok(order[0]!.startsWith('a/p'), order.join());
      assert.deepEqual(order.slice(2), ['b/second', 'c/backup']);
    }
    down.add('a/p2');
    const p1 = table.get('m')!.targets.find((t) => t.id === 'a/p1')!;
    for (let i = 0; i < 4; i++) router.onAttemptStart(p1, 1);
    // p1 saturated, p2 breaker-open: the secondary leads, then backup, then the saturated, then the unavailable.
    assert.deepEqual(ids(router, route('m')), ['b/second', 'c/backup', 'a/p1', 'a/p2']);
    down.delete('a/p2');
    router.deactivate('a/p2');
    assert.deepEqual(ids(router, route('m')), ['b/second', 'c/backup', 'a/p1']);
  });

  test('deactivate and activate take effect on the next decision; all deactivated is a 503', () => {
    const { router, route } = setup({
      m: {
        targets: [
          { provider: 'a', model: 'x' },
          { provider: 'b', model: 'x' },
        ],
      },
    });
    assert.equal(router.deactivate('a/x'), true);
    assert.deepEqual(ids(router, route('m')), ['b/x']);
    assert.equal(router.deactivate('b/x'), true);
    assert.throws(
      () => router.decide(route('m'), HELLO, CALLER),
      (error: unknown) =>
        GatewayError.is(error) && error.status === 503 && error.code === 'no_target_available',
    );
    assert.equal(router.activate('a/x'), true);
    assert.deepEqual(ids(router, route('m')), ['a/x']);
    assert.equal(router.deactivate('nope/x'), false);
  });
});
