/**
 * `npm run bench`'s settings, read once from the environment (see bench/run.ts
 * for the list), the node flags of each process, the aims the table judges
 * against, and the progress log (stderr, so stdout stays the report).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..');

/** A number from the environment (`fallback` when unset); anything but a non-negative number is refused. */
export function envNum(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return n;
}

export const SECONDS = envNum('BENCH_SECONDS', 10);
export const WARMUP_S = envNum('BENCH_WARMUP_SECONDS', Math.min(2, Math.max(0.5, SECONDS / 5)));
export const HOLD_S = envNum('BENCH_HOLD_SECONDS', Math.max(1, SECONDS / 2));
export const RATE = envNum('BENCH_RATE', 200);
export const HOLD_RATE = envNum('BENCH_HOLD_RATE', 1000);
export const CONCURRENCY = Math.max(1, Math.round(envNum('BENCH_CONCURRENCY', 50)));
export const STREAMS = Math.max(1, Math.round(envNum('BENCH_STREAMS', 200)));
/** Streams in flight at once in the streaming phase (compare.sh: 20). */
export const STREAM_CONCURRENCY = Math.max(1, Math.round(envNum('BENCH_STREAM_CONCURRENCY', 20)));
/** Gap between the upstream's stream frames (compare.sh: 5 ms). */
export const FRAME_INTERVAL_MS = envNum('BENCH_FRAME_INTERVAL_MS', 5);
export const ROUNDS = Math.max(1, Math.round(envNum('BENCH_ROUNDS', 5)));
/**
 * The closed loop (CPU per request) is measured as compare.sh measures it: rounds of
 * its length (5 s), each after a warm-up of its own (2 s at 10 connections, as its
 * bench.mjs does before every target), judged by the median round, not the mean of
 * all: the first round after a pause runs on a colder heap and JIT state and
 * costs more (typically 5-10 % here), which a mean of short rounds counted in.
 */
export const CLOSED_ROUNDS = Math.max(1, Math.round(envNum('BENCH_CLOSED_ROUNDS', 3)));
export const CLOSED_ROUND_S = envNum('BENCH_CLOSED_ROUND_SECONDS', Math.min(5, SECONDS));
export const CLOSED_WARMUP_S = envNum('BENCH_CLOSED_WARMUP_SECONDS', Math.min(2, WARMUP_S));
/**
 * The streams, as compare.sh runs them too: every round `STREAMS` streams (its 200), 20 in
 * flight, one after another as each ends. Split into short rounds (40 each), half of a round's
 * streams were its opening burst of 20 simultaneous requests, and the first byte measured how
 * a burst queues more than how a stream is relayed.
 */
export const STREAM_ROUNDS = Math.max(1, Math.round(envNum('BENCH_STREAM_ROUNDS', 3)));
export const PROFILE_S = process.argv.includes('--profile')
  ? envNum('BENCH_PROFILE', 0) || 5
  : envNum('BENCH_PROFILE', 0);
/**
 * compare.sh's pinning: the load generator and the mocks on CPU 0, the proxy under test
 * alone on CPU 1, so both benches measure the proxies on the same core.
 */
export const LOAD_CPU = 0;
export const PROXY_CPU = 1;
export const QUIET_WAIT_S = envNum('BENCH_QUIET_WAIT_SECONDS', 60);
export const OUT = resolve(ROOT, process.env['BENCH_OUT'] ?? 'bench/results/latest.json');
/**
 * Node flags both proxies run with: by default the ones the gateway ships with
 * (the `switchyard` binary's shebang, as `npm start` also uses them), so the
 * pass-through floor and the gateway are measured on equal terms.
 */
const SHIPPED_NODE_FLAGS = (
  /^#!.*\bnode\b(.*)$/.exec(
    readFileSync(join(ROOT, 'bin/switchyard.js'), 'utf8').split('\n')[0] ?? '',
  )?.[1] ?? ''
)
  .split(/\s+/)
  .filter(Boolean);
export const PROXY_NODE_FLAGS = (process.env['BENCH_PROXY_NODE_FLAGS'] ?? SHIPPED_NODE_FLAGS.join(' '))
  .split(/\s+/)
  .filter(Boolean);

/**
 * The aims, judged as compare.sh's verdict judges them: against the
 * pass-through measured in the same run (added latency at the fixed rate,
 * CPU per request at c=50, stream time to first byte, peak RSS).
 */
export const AIMS = { addedP50Us: 300, addedP99Us: 2000, cpuRatio: 2.5, streamAddedUs: 300, rssRatio: 1.5 };

/**
 * The load generator's own GC pauses land in every path's tail latency: with V8's default
 * young generation (up to 16 MB semi-spaces) a scavenge here takes 7-12 ms on a small VM.
 * Smaller semi-spaces keep them to a few ms, so `npm run bench` re-runs bench/run.ts with the
 * flag once (the proxies under test keep Node's defaults).
 */
export const GENERATOR_FLAGS = ['--max-semi-space-size=4'];

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}
