/**
 * The pieces of pre-warming and of `--workers` that are pure logic: the
 * restart back-off of dead HTTP workers, the worker count, the pools a
 * warmer chooses, and a warmer's rounds on its timer (mock timers).
 */
import assert from 'node:assert/strict';
import { describe, mock, test } from 'node:test';
import type { ProviderAdapter } from '../../src/providers/types.ts';
import type { ModelRoute } from '../../src/routing/model-table.ts';
import { RestartHistory } from '../../src/server/http-workers/restart-policy.ts';
import { parseWorkerCount, WorkerCountError } from '../../src/server/http-workers/worker-count.ts';
import { ConnectionWarmer, poolsToWarm } from '../../src/server/warmup/connection-warmer.ts';

describe('restart back-off', () => {
  test('a burst restarts at once, then each waits twice as long, up to the cap', () => {
    const history = new RestartHistory({ burst: 3, windowMs: 60_000, maxDelayMs: 8_000 });
    const delays = Array.from({ length: 8 }, (_, i) => history.next(1_000 + i).delayMs);
    assert.deepEqual(delays, [0, 0, 0, 1_000, 2_000, 4_000, 8_000, 8_000]);
  });

  test('restarts older than the window no longer count', () => {
    const history = new RestartHistory({ burst: 2, windowMs: 60_000, maxDelayMs: 30_000 });
    history.next(0);
    history.next(1);
    assert.equal(history.next(2).delayMs, 1_000);
    assert.deepEqual(history.next(61_000), { delayMs: 0, recent: 1 });
  });
});

describe('--workers', () => {
  test('a count, or auto: the CPUs this process may use', () => {
    assert.equal(parseWorkerCount(undefined, 8), 1);
    assert.equal(parseWorkerCount('3', 8), 3);
    assert.equal(parseWorkerCount('auto', 8), 8);
    assert.equal(parseWorkerCount('auto', 1), 1);
    for (const bad of ['0', '257', '1.5', '-2', 'x', '']) {
      assert.throws(() => parseWorkerCount(bad, 8), WorkerCountError, bad);
    }
  });
});

function fakeProvider(
  name: string,
  calls: Array<{ name: string; connectMs: number | undefined }>,
): ProviderAdapter {
  return {
    name,
    type: 'openai',
    chat: () => Promise.reject(new Error('unused')),
    streamChat: () => Promise.reject(new Error('unused')),
    embed: () => Promise.reject(new Error('unused')),
    check: async (_signal, options) => {
      calls.push({ name, connectMs: options?.connectMs });
    },
    close: async () => {},
  };
}

function route(name: string, connectMs: number, providers: ProviderAdapter[]): ModelRoute {
  return {
    name,
    timeouts: { connectMs, firstByteMs: 1, totalMs: 1, idleMs: 1 },
    targets: providers.map((provider) => ({ provider })),
  } as unknown as ModelRoute;
}

describe('connection warmer', () => {
  test('one pool per provider and connect timeout; providers without a probe are left alone', () => {
    const calls: Array<{ name: string; connectMs: number | undefined }> = [];
    const a = fakeProvider('a', calls);
    const b = fakeProvider('b', calls);
    const noProbe = { ...fakeProvider('c', calls), check: undefined };
    const pools = poolsToWarm(
      new Map([
        ['m1', route('m1', 2_000, [a, b])],
        ['m2', route('m2', 2_000, [a, noProbe])],
        ['m3', route('m3', 5_000, [a])],
      ]),
    );
    assert.deepEqual(
      pools.map((p) => `${p.provider.name}/${p.connectMs}`),
      ['a/2000', 'b/2000', 'a/5000'],
    );
  });

  test('rounds on the timer until closed; each sends `connections` probes at once', async () => {
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      const calls: Array<{ name: string; connectMs: number | undefined }> = [];
      const warmer = new ConnectionWarmer([{ provider: fakeProvider('a', calls), connectMs: 700 }], {
        connections: 2,
        intervalMs: 1_000,
        logger: { info: () => {}, warn: () => {} },
      });
      assert.deepEqual(await warmer.start(), { ok: 2, failed: 0 });
      assert.deepEqual(calls, [
        { name: 'a', connectMs: 700 },
        { name: 'a', connectMs: 700 },
      ]);
      mock.timers.tick(1_000);
      await warmer.round();
      assert.equal(calls.length, 4);
      warmer.close();
      mock.timers.tick(5_000);
      assert.equal(calls.length, 4);
    } finally {
      mock.timers.reset();
    }
  });

  test('a failing provider is one warning until it recovers, and never throws', async () => {
    const warnings: object[] = [];
    let fail = true;
    const provider: ProviderAdapter = {
      ...fakeProvider('down', []),
      check: async () => {
        if (fail) throw Object.assign(new Error('refused'), { code: 'upstream_connect_failed' });
      },
    };
    const warmer = new ConnectionWarmer([{ provider, connectMs: 2_000 }], {
      connections: 2,
      intervalMs: 0,
      logger: { info: () => {}, warn: (obj) => warnings.push(obj) },
    });
    assert.deepEqual(await warmer.start(), { ok: 0, failed: 2 });
    await warmer.round();
    assert.deepEqual(warnings, [{ provider: 'down', failed: 2, code: 'upstream_connect_failed' }]);
    fail = false;
    assert.deepEqual(await warmer.round(), { ok: 2, failed: 0 });
    fail = true;
    await warmer.round();
    assert.equal(warnings.length, 2);
    warmer.close();
  });
});
