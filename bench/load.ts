/**
 * A small load generator over undici with microsecond timing:
 * - `openLoop`: fires on a fixed schedule whatever the completions (no coordinated
 *   omission from waiting on slow answers); latency = send → last body byte.
 * - `closedLoop`: N workers, each sending its next request when the last one ends.
 * - `sequential`: one request at a time; also records time to the first body byte.
 *
 * Every response is checked (status and body shape); failures are counted by reason,
 * never timed.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';

/** Returns an error reason, or undefined when the response is as expected. */
export type Check = (status: number, headers: IncomingHttpHeaders, body: string) => string | undefined;

export interface Target {
  name: string;
  origin: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  check: Check;
}

export class Errors {
  readonly byReason = new Map<string, number>();
  total = 0;
  add(reason: string): void {
    this.total++;
    this.byReason.set(reason, (this.byReason.get(reason) ?? 0) + 1);
  }
  merge(other: Errors): void {
    for (const [reason, n] of other.byReason) {
      this.byReason.set(reason, (this.byReason.get(reason) ?? 0) + n);
      this.total += n;
    }
  }
  toJSON(): { total: number; byReason: Record<string, number> } {
    return { total: this.total, byReason: Object.fromEntries(this.byReason) };
  }
}

export interface Outcome {
  ok: boolean;
  /** Send → last body byte, µs. */
  us: number;
  /** Send → first body byte, µs (0 if no body). */
  ttfbUs: number;
  bytes: number;
  /** When it was sent: CLOCK_MONOTONIC ms (process.hrtime), the clock a proxy's probe reads too. */
  sentAtMs?: number;
}

const now = process.hrtime.bigint;
const usSince = (t0: bigint, t1: bigint): number => Number(t1 - t0) / 1000;

export function makePool(origin: string, connections: number): Pool {
  return new Pool(origin, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
}

/** One request, timed; errors go to `errors`. */
export async function once(pool: Pool, t: Target, errors: Errors): Promise<Outcome> {
  const t0 = now();
  let first = 0n;
  try {
    const res = await pool.request({ method: 'POST', path: t.path, headers: t.headers, body: t.body });
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      res.body.on('data', (c: Buffer) => {
        if (first === 0n) first = now();
        chunks.push(c);
      });
      res.body.on('end', resolve);
      res.body.on('error', reject);
    });
    const t1 = now();
    const text = Buffer.concat(chunks).toString('utf8');
    const reason = t.check(res.statusCode, res.headers as IncomingHttpHeaders, text);
    if (reason !== undefined) {
      errors.add(reason);
      return { ok: false, us: 0, ttfbUs: 0, bytes: text.length };
    }
    return {
      ok: true,
      us: usSince(t0, t1),
      ttfbUs: first === 0n ? 0 : usSince(t0, first),
      bytes: text.length,
      sentAtMs: Number(t0) / 1e6,
    };
  } catch (error) {
    const e = error as { code?: string; name?: string };
    errors.add(e.code ?? e.name ?? 'exception');
    return { ok: false, us: 0, ttfbUs: 0, bytes: 0 };
  }
}

export interface Percentiles {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function percentiles(samples: ArrayLike<number>): Percentiles {
  const a = Float64Array.from(samples).sort();
  const n = a.length;
  if (n === 0)
    return { n: 0, p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN };
  const at = (q: number): number => a[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] ?? Number.NaN;
  let sum = 0;
  for (const x of a) sum += x;
  return { n, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: a[n - 1] ?? Number.NaN, mean: sum / n };
}

/** Raw samples ride along for merging rounds; `withoutSamples` drops them for reports. */
export interface OpenLoopResult {
  rateTarget: number;
  sent: number;
  ok: number;
  seconds: number;
  achievedRps: number;
  samples: number[];
  lags: number[];
  latencyUs: Percentiles;
  /** How late requests left against their schedule (generator health), µs. */
  sendLagUs: Percentiles;
  errors: Errors;
}

/**
 * Fires `rps × seconds` requests on schedule. Bounded: at most `maxInFlight`
 * outstanding (later ones are counted as `shed`), and a drain timeout.
 */
export async function openLoop(
  pool: Pool,
  t: Target,
  rps: number,
  seconds: number,
  maxInFlight = 4000,
): Promise<OpenLoopResult> {
  const total = Math.max(1, Math.round(rps * seconds));
  const intervalNs = 1e9 / rps;
  const lat = new Float64Array(total);
  const lag = new Float64Array(total);
  const errors = new Errors();
  let okCount = 0;
  let sent = 0;
  let inFlight = 0;
  let lastDone = 0n;
  const start = now();
  const elapsedNs = (): number => Number(now() - start);

  await new Promise<void>((resolve) => {
    let scheduled = true;
    const maybeDone = (): void => {
      if (!scheduled && inFlight === 0) resolve();
    };
    const fire = (i: number): void => {
      lag[i] = Math.max(0, elapsedNs() - i * intervalNs) / 1000;
      if (inFlight >= maxInFlight) {
        errors.add('shed (too many in flight)');
        return;
      }
      inFlight++;
      once(pool, t, errors).then((o) => {
        inFlight--;
        lastDone = now();
        if (o.ok) lat[okCount++] = o.us;
        maybeDone();
      });
    };
    const tick = (): void => {
      const e = elapsedNs();
      while (sent < total && sent * intervalNs <= e) fire(sent++);
      if (sent < total) {
        setTimeout(tick, Math.max(0, Math.floor((sent * intervalNs - elapsedNs()) / 1e6)));
      } else {
        scheduled = false;
        maybeDone();
        // Bounded drain: whatever is still out after 15 s counts as timed out.
        setTimeout(() => {
          if (inFlight > 0) {
            for (let k = 0; k < inFlight; k++) errors.add('timeout (drain)');
            inFlight = 0;
            resolve();
          }
        }, 15_000).unref();
      }
    };
    tick();
  });
  const durationS = Number((lastDone > start ? lastDone : now()) - start) / 1e9;
  const samples = Array.from(lat.subarray(0, okCount));
  const lags = Array.from(lag);
  return {
    rateTarget: rps,
    sent: total,
    ok: okCount,
    seconds: durationS,
    achievedRps: okCount / Math.max(durationS, 1e-9),
    samples,
    lags,
    latencyUs: percentiles(samples),
    sendLagUs: percentiles(lags),
    errors,
  };
}

export interface ClosedLoopResult {
  concurrency: number;
  ok: number;
  rps: number;
  seconds: number;
  samples: number[];
  latencyUs: Percentiles;
  errors: Errors;
}

/** `concurrency` workers, each loops until `seconds` have passed (bounded by a request cap). */
export async function closedLoop(
  pool: Pool,
  t: Target,
  concurrency: number,
  seconds: number,
  maxRequests = 2_000_000,
): Promise<ClosedLoopResult> {
  const errors = new Errors();
  const lat: number[] = [];
  const start = now();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (now() < deadline && issued < maxRequests) {
      issued++;
      const o = await once(pool, t, errors);
      if (o.ok) lat.push(o.us);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = Number(now() - start) / 1e9;
  return {
    concurrency,
    ok: lat.length,
    rps: lat.length / elapsed,
    seconds: elapsed,
    samples: lat,
    latencyUs: percentiles(lat),
    errors,
  };
}

export interface SequentialResult {
  ok: number;
  ttfbSamples: number[];
  totalSamples: number[];
  ttfbUs: Percentiles;
  totalUs: Percentiles;
  errors: Errors;
}

/** `count` requests one after another (after `warmup` untimed ones). */
export async function sequential(
  pool: Pool,
  t: Target,
  count: number,
  warmup: number,
): Promise<SequentialResult> {
  const scratch = new Errors();
  for (let i = 0; i < warmup; i++) await once(pool, t, scratch);
  const result = await concurrent(pool, t, count, 1);
  result.errors.merge(scratch);
  return result;
}

/** `count` requests, `concurrency` at a time (streams in flight together, as compare.sh runs them). */
export async function concurrent(
  pool: Pool,
  t: Target,
  count: number,
  concurrency: number,
): Promise<SequentialResult> {
  const errors = new Errors();
  const ttfb: number[] = [];
  const total: number[] = [];
  for (const o of await inTurns(pool, t, count, concurrency, errors)) {
    if (o.ok) {
      ttfb.push(o.ttfbUs);
      total.push(o.us);
    }
  }
  return {
    ok: ttfb.length,
    ttfbSamples: ttfb,
    totalSamples: total,
    ttfbUs: percentiles(ttfb),
    totalUs: percentiles(total),
    errors,
  };
}

/**
 * `count` requests from `concurrency` workers, each sending its next one as its last
 * one ends (bench.mjs's stream test): every outcome, in the order they ended.
 */
export async function inTurns(
  pool: Pool,
  t: Target,
  count: number,
  concurrency: number,
  errors: Errors,
): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued < count) {
      issued++;
      outcomes.push(await once(pool, t, errors));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return outcomes;
}

function mergeErrors(rs: { errors: Errors }[]): Errors {
  const e = new Errors();
  for (const r of rs) e.merge(r.errors);
  return e;
}

/** Rounds of the same open-loop run, as one. */
export function mergeOpen(rs: OpenLoopResult[]): OpenLoopResult {
  const samples = rs.flatMap((r) => r.samples);
  const lags = rs.flatMap((r) => r.lags);
  const ok = rs.reduce((a, r) => a + r.ok, 0);
  const seconds = rs.reduce((a, r) => a + r.seconds, 0);
  return {
    rateTarget: rs[0]?.rateTarget ?? 0,
    sent: rs.reduce((a, r) => a + r.sent, 0),
    ok,
    seconds,
    achievedRps: ok / Math.max(seconds, 1e-9),
    samples,
    lags,
    latencyUs: percentiles(samples),
    sendLagUs: percentiles(lags),
    errors: mergeErrors(rs),
  };
}

export function mergeClosed(rs: ClosedLoopResult[]): ClosedLoopResult {
  const samples = rs.flatMap((r) => r.samples);
  const seconds = rs.reduce((a, r) => a + r.seconds, 0);
  if (samples.length === 0 && rs.some((r) => r.ok > 0)) {
    // Rounds measured by wrk carry percentiles, not samples: the median round's.
    const ok = rs.reduce((a, r) => a + r.ok, 0);
    const byP50 = [...rs].sort((a, b) => a.latencyUs.p50 - b.latencyUs.p50);
    return {
      concurrency: rs[0]?.concurrency ?? 0,
      ok,
      rps: ok / Math.max(seconds, 1e-9),
      seconds,
      samples,
      latencyUs: byP50[Math.floor((byP50.length - 1) / 2)]!.latencyUs,
      errors: mergeErrors(rs),
    };
  }
  return {
    concurrency: rs[0]?.concurrency ?? 0,
    ok: samples.length,
    rps: samples.length / Math.max(seconds, 1e-9),
    seconds,
    samples,
    latencyUs: percentiles(samples),
    errors: mergeErrors(rs),
  };
}

export function mergeSequential(rs: SequentialResult[]): SequentialResult {
  const ttfbSamples = rs.flatMap((r) => r.ttfbSamples);
  const totalSamples = rs.flatMap((r) => r.totalSamples);
  return {
    ok: ttfbSamples.length,
    ttfbSamples,
    totalSamples,
    ttfbUs: percentiles(ttfbSamples),
    totalUs: percentiles(totalSamples),
    errors: mergeErrors(rs),
  };
}

/** JSON.stringify replacer that leaves the raw samples out. */
export function withoutSamples(key: string, value: unknown): unknown {
  return key === 'samples' || key === 'lags' || key === 'ttfbSamples' || key === 'totalSamples'
    ? undefined
    : value;
}
