/**
 * The per-request metrics' cells render exactly as prom-client's own Counter
 * and Histogram render the same updates: the scrape text, the JSON the fleet
 * of `--workers N` is summed from, and that sum itself.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { LabelledCounter, LabelledHistogram } from '../../src/observability/label-cells.ts';

const BUCKETS = [0.005, 0.01, 0.1, 1, 10];
const ROUTES = ['/v1/chat/completions', '/v1/messages'];
const STATUSES = ['200', '429', '502'];

/** The same updates on both kinds of metric, each in a registry of its own. */
function pair(seed: number): { ours: Registry; theirs: Registry } {
  const ours = new Registry();
  const theirs = new Registry();
  const names = { labelNames: ['route', 'model', 'status'] as const, help: 'requests' };
  const counter = new LabelledCounter({ name: 'sy_requests_total', ...names, registers: [ours] });
  const reference = new Counter({ name: 'sy_requests_total', ...names, registers: [theirs] });
  const histogram = new LabelledHistogram({
    name: 'sy_duration_seconds',
    ...names,
    buckets: BUCKETS,
    registers: [ours],
  });
  const referenceHistogram = new Histogram({
    name: 'sy_duration_seconds',
    ...names,
    buckets: BUCKETS,
    registers: [theirs],
  });
  let x = seed;
  const next = () => {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    return x / 2_147_483_648;
  };
  for (let i = 0; i < 500; i++) {
    const labels = {
      route: ROUTES[Math.floor(next() * ROUTES.length)]!,
      model: next() < 0.5 ? 'gpt-4o-mini' : 'other',
      status: STATUSES[Math.floor(next() * STATUSES.length)]!,
    };
    const by = Math.floor(next() * 3);
    counter.inc(labels, by);
    reference.inc(labels, by);
    // Bounds themselves included: a value equal to a bound counts in that bucket (le).
    const seconds = next() < 0.1 ? BUCKETS[Math.floor(next() * BUCKETS.length)]! : next() * 20;
    histogram.observe(labels, seconds);
    referenceHistogram.observe(labels, seconds);
  }
  return { ours, theirs };
}

test('the scrape text is the text prom-client renders for the same updates', async () => {
  const { ours, theirs } = pair(7);
  const text = await ours.metrics();
  assert.equal(text, await theirs.metrics());
  assert.match(text, /sy_duration_seconds_bucket\{le="\+Inf",route=/);
});

/** Metric data without prom-client's exemplar slots (null or undefined: none is ever recorded here). */
function withoutExemplars(data: unknown): unknown {
  return JSON.parse(JSON.stringify(data, (key, value) => (key === 'exemplar' ? undefined : value)));
}

test('the JSON and the fleet sum (--workers N) match prom-client too', async () => {
  const a = pair(1);
  const b = pair(2);
  assert.deepEqual(
    withoutExemplars(await a.ours.getMetricsAsJSON()),
    withoutExemplars(await a.theirs.getMetricsAsJSON()),
  );
  const summed = AggregatorRegistry.aggregate([
    await a.ours.getMetricsAsJSON(),
    await b.ours.getMetricsAsJSON(),
  ]);
  const reference = AggregatorRegistry.aggregate([
    await a.theirs.getMetricsAsJSON(),
    await b.theirs.getMetricsAsJSON(),
  ]);
  assert.equal(await summed.metrics(), await reference.metrics());
});

test('a counter refuses to go down or by a non-number; reset empties both kinds', async () => {
  const registry = new Registry();
  const counter = new LabelledCounter({
    name: 'c_total',
    help: 'c',
    labelNames: ['a'],
    registers: [registry],
  });
  const histogram = new LabelledHistogram({
    name: 'h_seconds',
    help: 'h',
    labelNames: ['a'],
    buckets: [1],
    registers: [registry],
  });
  assert.throws(() => counter.inc({ a: 'x' }, -1), RangeError);
  assert.throws(() => counter.inc({ a: 'x' }, Number.NaN), RangeError);
  assert.throws(() => histogram.observe({ a: 'x' }, Number.POSITIVE_INFINITY), RangeError);
  counter.inc({ a: 'x' });
  histogram.observe({ a: 'x' }, 0.5);
  assert.match(await registry.metrics(), /c_total\{a="x"\} 1/);
  registry.resetMetrics();
  assert.doesNotMatch(await registry.metrics(), /a="x"/);
});

test('a metric without labels renders as prom-client renders it: zeros before any update, and after a reset', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const options = { name: 'sy_lookup_seconds', help: 'lookups', labelNames: [] as const, buckets: BUCKETS };
  const histogram = new LabelledHistogram({ ...options, registers: [ours] });
  const reference = new Histogram({ ...options, labelNames: [], registers: [theirs] });
  const counter = new LabelledCounter({
    name: 'sy_lookups_total',
    help: 'n',
    labelNames: [] as const,
    registers: [ours],
  });
  const referenceCounter = new Counter({
    name: 'sy_lookups_total',
    help: 'n',
    labelNames: [],
    registers: [theirs],
  });
  assert.equal(await ours.metrics(), await theirs.metrics());
  for (const seconds of [0.001, 0.01, 0.5, 30]) {
    histogram.observe({}, seconds);
    reference.observe(seconds);
    counter.inc({}, 2);
    referenceCounter.inc(2);
  }
  const text = await ours.metrics();
  assert.equal(text, await theirs.metrics());
  assert.match(text, /^sy_lookup_seconds_count 4$/m);
  ours.resetMetrics();
  theirs.resetMetrics();
  assert.equal(await ours.metrics(), await theirs.metrics());
  histogram.observe({}, 2);
  reference.observe(2);
  assert.equal(await ours.metrics(), await theirs.metrics());
});
