/**
 * One event-loop delay sampler serves the `event_loop` health check and the
 * `nodejs_eventloop_lag_*` gauges of /metrics: the health run ends a window,
 * and both report that window.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { HealthChecker } from '../../src/observability/health-checker.ts';
import { LoopDelay } from '../../src/observability/loop-delay.ts';
import { GatewayMetrics } from '../../src/observability/metrics.ts';
import { registerSystemChecks } from '../../src/observability/system-checks.ts';

const RESOLUTION_MS = 20;
const BLOCK_MS = 150;

/**
 * Holds the loop for BLOCK_MS between two samples (a sample is the time since the last one).
 * Timers run in the order they are due: a timeout due after the sampler's first tick runs
 * after it (that tick only starts the count), and one due after the stall runs after the
 * sample the stall delayed.
 */
async function stall(): Promise<void> {
  await delay(RESOLUTION_MS + 5);
  const until = performance.now() + BLOCK_MS;
  while (performance.now() < until) {
    // The stall being measured.
  }
  await delay(1);
}

test('a window holds the stall that happened in it, and the next starts empty', async () => {
  const sampler = new LoopDelay(RESOLUTION_MS);
  try {
    assert.equal(sampler.last.samples, 0, 'no window has ended yet');
    await stall();
    const window = sampler.roll();
    assert.ok(window.samples >= 1);
    // The sample after the stall came at least BLOCK_MS after the one before it.
    assert.ok(window.max >= BLOCK_MS, `max ${window.max} ms`);
    assert.ok(window.p99 >= window.p50 && window.max >= window.p99 && window.min <= window.mean);
    assert.equal(sampler.last, window);
    // Nothing ran in between: the next window has no sample, and reads as zeros.
    const empty = sampler.roll();
    assert.deepEqual(
      { ...empty },
      { samples: 0, min: 0, max: 0, mean: 0, stddev: 0, p50: 0, p90: 0, p99: 0 },
    );
  } finally {
    sampler.stop();
  }
});

test('/metrics reports the window the health check ended, under the standard names', async () => {
  const sampler = new LoopDelay(RESOLUTION_MS);
  const dataDir = mkdtempSync(join(tmpdir(), 'loop-delay-'));
  const checker = new HealthChecker();
  const stopChecks = registerSystemChecks(checker, { dataDir, loopDelay: sampler });
  try {
    const metrics = new GatewayMetrics([], () => 0, sampler);
    await stall();
    const health = await checker.run();
    const check = health.checks['event_loop']!;
    assert.ok((check['max_ms'] as number) >= BLOCK_MS, JSON.stringify(check));

    const gauge = async (name: string) => {
      const values = (await metrics.registry.getSingleMetric(name)!.get()).values;
      assert.equal(values.length, 1, name);
      return values[0]!.value;
    };
    assert.equal(await gauge('nodejs_eventloop_lag_max_seconds'), sampler.last.max / 1000);
    assert.equal(await gauge('nodejs_eventloop_lag_p99_seconds'), sampler.last.p99 / 1000);
    assert.equal(Math.round(sampler.last.p99 * 10) / 10, check['p99_ms']);
    // A scrape ends no window: two readers never take each other's samples.
    assert.equal(await gauge('nodejs_eventloop_lag_max_seconds'), sampler.last.max / 1000);
    const text = await metrics.registry.metrics();
    for (const stat of ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99']) {
      const name = `nodejs_eventloop_lag_${stat}_seconds`;
      assert.equal(text.split('\n').filter((line) => line.startsWith(`${name} `)).length, 1, name);
    }
    // The lag measured at scrape time stays prom-client's own.
    assert.ok(metrics.registry.getSingleMetric('nodejs_eventloop_lag_seconds'));
  } finally {
    stopChecks();
    sampler.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
