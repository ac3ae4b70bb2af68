/**
 * What a model's routing rules mean, at load and at run time: conditions
 * (`routes`), route selectors (one rule for the start-up check and the
 * router), nested groups and their limits, and the config checks that refuse
 * what cannot route.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/config/load.ts';
import { MAX_GROUP_DEPTH } from '../../src/config/routing-schema.ts';
import { HELLO, ids, key, setup } from '../helpers/router-setup.ts';

describe('conditions', () => {
  const models = {
    m: {
      routes: [
        { when: { key_tier: 'free' }, targets: ['local'] },
        { when: { key_metadata: { team: ['research', 'ml'] } }, targets: ['c/big'] },
        { when: { headers: { 'X-Priority': 'high' } }, targets: ['a/paid', 'c/big'] },
      ],
      targets: [
        { provider: 'a', model: 'paid' },
        { provider: 'local', model: 'llama', tags: ['local'] },
        { provider: 'c', model: 'big' },
      ],
    },
  };

  test('key tier: free keys only get local targets; pro keys get all', () => {
    const { router, route } = setup(models);
    assert.deepEqual(ids(router, route('m'), HELLO, { key: key('free'), headers: {} }), ['local/llama']);
    assert.deepEqual(ids(router, route('m'), HELLO, { key: key('pro'), headers: {} }), [
      'a/paid',
      'local/llama',
      'c/big',
    ]);
  });

  test('key metadata (one of several values)', () => {
    const { router, route } = setup(models);
    assert.deepEqual(ids(router, route('m'), HELLO, { key: key(null, { team: 'ml' }), headers: {} }), [
      'c/big',
    ]);
    assert.equal(
      ids(router, route('m'), HELLO, { key: key(null, { team: 'sales' }), headers: {} }).length,
      3,
    );
  });

  test('request header (name case-insensitive); first matching rule wins', () => {
    const { router, route } = setup(models);
    assert.deepEqual(ids(router, route('m'), HELLO, { key: key(), headers: { 'x-priority': 'high' } }), [
      'a/paid',
      'c/big',
    ]);
    assert.deepEqual(
      ids(router, route('m'), HELLO, { key: key('free'), headers: { 'x-priority': 'high' } }),
      ['local/llama'],
    );
  });

  test('a selector that matches nothing is refused at load', () => {
    assert.throws(
      () =>
        setup({
          m: {
            routes: [{ when: { key_tier: 'free' }, targets: ['nope'] }],
            targets: [{ provider: 'a', model: 'x' }],
          },
        }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.problems.includes("models.m.routes.0.targets: 'nope' matches no target"),
    );
  });
});

describe('route selectors: one rule at load and at run time', () => {
  const models = (selector: string) => ({
    cheap: { targets: [{ provider: 'b', model: 'low' }] },
    m: {
      routes: [{ when: { key_tier: 'free' }, targets: [selector] }],
      targets: [
        { provider: 'a', model: 'paid', tags: ['paid'] },
        { provider: 'local', model: 'llama', tags: ['local'] },
        { group: 'cheap' },
      ],
    },
  });

  test("`group:<model>` (the group entry's id) selects the group at load and at run time", () => {
    const { router, route } = setup(models('group:cheap'));
    assert.deepEqual(ids(router, route('m'), HELLO, { key: key('free'), headers: {} }), ['b/low']);
  });

  test('every selector the load check accepts selects something at run time, and only those', () => {
    const cases: Array<[string, string[] | undefined]> = [
      ['*', ['a/paid', 'local/llama', 'b/low']],
      ['a/paid', ['a/paid']],
      ['local', ['local/llama']],
      ['cheap', ['b/low']],
      ['group:cheap', ['b/low']],
      // Refused: a target inside a group is not one of this model's entries; unknown names.
      ['b/low', undefined],
      ['group:nope', undefined],
      ['group:', undefined],
      ['a/nope', undefined],
      ['nope', undefined],
    ];
    for (const [selector, expected] of cases) {
      let loaded: ReturnType<typeof setup> | undefined;
      try {
        loaded = setup(models(selector));
      } catch (error) {
        assert.ok(error instanceof ConfigError, `${selector}: ${String(error)}`);
        assert.deepEqual(error.problems, [`models.m.routes.0.targets: '${selector}' matches no target`]);
      }
      assert.equal(loaded !== undefined, expected !== undefined, `'${selector}' accepted at load`);
      if (loaded === undefined || expected === undefined) continue;
      const chosen = ids(loaded.router, loaded.route('m'), HELLO, { key: key('free'), headers: {} });
      assert.deepEqual(chosen, expected, `'${selector}' at run time`);
    }
  });
});

describe('nested groups', () => {
  test('a group is decided with its own strategy and flattened in place', () => {
    const { router, route } = setup({
      cheap: {
        strategy: 'cost',
        targets: [
          { provider: 'a', model: 'mid', input_per_mtok: 1, output_per_mtok: 1 },
          { provider: 'b', model: 'low', input_per_mtok: 0.1, output_per_mtok: 0.1 },
        ],
      },
      m: {
        targets: [{ provider: 'c', model: 'first' }, { group: 'cheap' }, { provider: 'a', model: 'mid' }],
      },
    });
    // a/mid appears once, where the group put it.
    assert.deepEqual(ids(router, route('m')), ['c/first', 'b/low', 'a/mid']);
    assert.deepEqual(
      route('m').targets.map((t) => t.id),
      ['c/first', 'a/mid', 'b/low'],
    );
  });

  test("a group's role applies to all its members", () => {
    const { router, route } = setup({
      spare: {
        targets: [
          { provider: 'a', model: 's1' },
          { provider: 'a', model: 's2' },
        ],
      },
      m: {
        targets: [
          { group: 'spare', role: 'backup' },
          { provider: 'b', model: 'main' },
        ],
      },
    });
    assert.deepEqual(ids(router, route('m')), ['b/main', 'a/s1', 'a/s2']);
  });

  test('cycles are refused at load, with the cycle named', () => {
    assert.throws(
      () =>
        setup({
          x: { targets: [{ group: 'y' }] },
          y: { targets: [{ provider: 'a', model: 'm' }, { group: 'z' }] },
          z: { targets: [{ group: 'x' }] },
        }),
      (error: unknown) =>
        error instanceof ConfigError && error.problems.includes('models.x: group cycle x -> y -> z -> x'),
    );
    assert.throws(
      () => setup({ x: { targets: [{ group: 'x' }] } }),
      (error: unknown) =>
        error instanceof ConfigError && error.problems.includes('models.x: group cycle x -> x'),
    );
  });

  /** g0 → g1 → … → g<depth>, the last holding the one upstream target. */
  const chain = (depth: number): Record<string, unknown> =>
    Object.fromEntries(
      Array.from({ length: depth + 1 }, (_, i) => [
        `g${i}`,
        { targets: [i === depth ? { provider: 'a', model: 'deep' } : { group: `g${i + 1}` }] },
      ]),
    );

  test(`groups nested ${MAX_GROUP_DEPTH} deep (the limit) load, and the deepest target is routed to`, () => {
    const { router, route } = setup(chain(MAX_GROUP_DEPTH));
    assert.deepEqual(
      route('g0').targets.map((t) => t.id),
      ['a/deep'],
    );
    assert.deepEqual(ids(router, route('g0')), ['a/deep']);
  });

  test(`groups nested deeper than ${MAX_GROUP_DEPTH} are refused at load, naming the model`, () => {
    assert.throws(
      () => setup(chain(MAX_GROUP_DEPTH + 1)),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.problems.length === 1 &&
        error.problems[0] ===
          `models.g0: groups nested ${MAX_GROUP_DEPTH + 1} deep (at most ${MAX_GROUP_DEPTH})`,
    );
  });

  test('complexity without tiered targets is refused at load', () => {
    assert.throws(
      () => setup({ auto: { strategy: 'complexity', targets: [{ provider: 'a', model: 'x' }] } }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.problems.includes(
          'models.auto.strategy: complexity needs targets with a tier (small|medium|large)',
        ),
    );
  });

  test('a target must be provider+model or group; unknown groups are named', () => {
    assert.throws(
      () =>
        setup({
          fast: {
            targets: [
              { provider: 'a', model: 'x' },
              { provider: 'a', group: 'y' },
            ],
          },
        }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.problems.includes('models.fast.targets.1: expected either provider+model or group'),
    );
    assert.throws(
      () => setup({ fast: { targets: [{ group: 'ghost' }] } }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.problems.includes("models.fast.targets.0.group: unknown model 'ghost'"),
    );
  });
});
