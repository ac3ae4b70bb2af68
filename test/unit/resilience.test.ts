/**
 * The Resilience facade and its parts: one breaker per target (the first
 * model's settings win), listings and availability for health and admin,
 * a latency sketch per target, and the five resilience metrics.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { validateConfig } from '../../src/config/load.ts';
import { createProviders } from '../../src/providers/registry.ts';
import { MemoryBreakerStore } from '../../src/resilience/breaker-store.ts';
import { Resilience } from '../../src/resilience/resilience.ts';
import { buildModelTable } from '../../src/routing/model-table.ts';

function rig(store = new MemoryBreakerStore()) {
  const config = validateConfig({
    providers: { p: { type: 'mock' } },
    models: {
      first: {
        targets: [
          { provider: 'p', model: 'a' },
          { provider: 'p', model: 'b' },
        ],
        circuit_breaker: { failure_threshold: 2 },
      },
      second: {
        targets: [
          { provider: 'p', model: 'b' },
          { provider: 'p', model: 'c' },
        ],
        circuit_breaker: { failure_threshold: 9 },
      },
      unguarded: {
        targets: [{ provider: 'p', model: 'd' }],
        circuit_breaker: { enabled: false },
      },
    },
  });
  const models = buildModelTable(config, createProviders(config.providers));
  const registry = new Registry();
  const resilience = new Resilience(config, models, { registry, store });
  return { resilience, registry, store };
}

describe('Resilience', () => {
  test('one breaker per target: a target shared by two models keeps the first model settings', () => {
    const { resilience } = rig();
    assert.equal(resilience.breaker('p/a')?.failureThreshold, 2);
    assert.equal(resilience.breaker('p/b')?.failureThreshold, 2);
    assert.equal(resilience.breaker('p/c')?.failureThreshold, 9);
    assert.equal(resilience.breaker('p/d'), undefined, 'breakers disabled for its model');
    assert.equal(resilience.breaker('p/nope'), undefined);
    assert.deepEqual([...resilience.targets.keys()], ['p/a', 'p/b', 'p/c', 'p/d']);
  });

  test('lists every target, those without a breaker as closed; available while one target is', async () => {
    const { resilience } = rig();
    await resilience.breaker('p/a')!.trip();
    await resilience.breaker('p/b')!.isolate();
    assert.deepEqual(
      resilience.list().map((t) => [t.id, t.provider, t.model, t.state, t.retry_after_ms > 0]),
      [
        ['p/a', 'p', 'a', 'open', true],
        ['p/b', 'p', 'b', 'isolated', false],
        ['p/c', 'p', 'c', 'closed', false],
        ['p/d', 'p', 'd', 'closed', false],
      ],
    );
    assert.equal(resilience.anyTargetAvailable(), true, 'p/c and p/d still take requests');
    await resilience.breaker('p/c')!.trip();
    assert.equal(resilience.anyTargetAvailable(), true, 'p/d has no breaker: always available');
  });

  test('sync adopts states shared before it started; close stops its breakers listening', async () => {
    const store = new MemoryBreakerStore();
    await store.publish('p/c', { state: 'isolated', epoch: 5, openUntil: 0 });
    const { resilience } = rig(store);
    assert.equal(resilience.breaker('p/c')!.state, 'closed', 'nothing heard yet');
    await resilience.sync();
    assert.equal(resilience.breaker('p/c')!.state, 'isolated');
    assert.equal(resilience.breaker('p/a')!.state, 'closed');
    await resilience.close();
    await store.publish('p/a', { state: 'open', epoch: 6, openUntil: Date.now() + 60_000 });
    assert.equal(resilience.breaker('p/a')!.state, 'closed');
  });

  test('one latency sketch per target, kept', () => {
    const { resilience } = rig();
    const sketch = resilience.sketch('p/a');
    sketch.add(5);
    assert.equal(resilience.sketch('p/a'), sketch);
    assert.equal(resilience.sketch('p/a').count, 1);
    assert.notEqual(resilience.sketch('p/b'), sketch);
  });

  test('the five metrics: breaker states read at scrape time, four counters dispatch moves', async () => {
    const { resilience, registry } = rig();
    await resilience.breaker('p/a')!.trip();
    await resilience.breaker('p/b')!.isolate();
    resilience.metrics.retries.inc({ target: 'p/a', reason: 'upstream_error' });
    resilience.metrics.fallbacks.inc({ reason: 'circuit_open' });
    resilience.metrics.hedges.inc({ outcome: 'won' });
    resilience.metrics.budgetExhausted.inc();
    const text = await registry.metrics();
    for (const line of [
      'switchyard_circuit_breaker_state{target="p/a"} 2',
      'switchyard_circuit_breaker_state{target="p/b"} 3',
      'switchyard_circuit_breaker_state{target="p/c"} 0',
      'switchyard_retries_total{target="p/a",reason="upstream_error"} 1',
      'switchyard_fallbacks_total{reason="circuit_open"} 1',
      'switchyard_hedges_total{outcome="won"} 1',
      'switchyard_retry_budget_exhausted_total 1',
    ]) {
      assert.ok(text.includes(line), `${line}\n${text}`);
    }
    assert.ok(!text.includes('target="p/d"'), 'no breaker, no state');
    await resilience.close();
  });
});
