/** Spend in /metrics is labelled by key and team with bounded cardinality: past the bound, `other`. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GatewayMetrics, SPEND_LABELS } from '../../src/observability/metrics.ts';

test('spend by key and team: every value a series up to the bound, the rest as other, nothing lost', async () => {
  const metrics = new GatewayMetrics([], () => 0);
  for (let i = 0; i < SPEND_LABELS + 5; i++)
    metrics.addSpend(`key_${i}`, i % 2 === 0 ? 'team_a' : null, 1_000);
  metrics.addSpend(null, null, 2_000);
  metrics.addSpend('key_0', 'team_a', 0);
  const values = (await metrics.spend.get()).values;
  const keys = new Set(values.map((v) => v.labels['key']));
  assert.equal(keys.size, SPEND_LABELS + 1, 'the first SPEND_LABELS keys, then other');
  assert.ok(keys.has('other'));
  assert.ok(!keys.has('master'), 'the master key came after the bound');
  const total = values.reduce((sum, v) => sum + v.value, 0);
  assert.ok(Math.abs(total - ((SPEND_LABELS + 5) * 0.001 + 0.002)) < 1e-9, String(total));
  assert.deepEqual(new Set(values.map((v) => v.labels['team'])), new Set(['team_a', 'none']));
});
