/**
 * The closed-loop phase through wrk (C, one thread), as the side-by-side
 * harness (../shared/bench/compare.sh) and anyone comparing gateways measures
 * it. A load generator in Node on the other core cannot keep 50 connections
 * busy the way wrk does: the proxy then runs at a third of the rate, where a
 * request costs it more CPU (fewer requests share each wake-up of its event
 * loop), and every ratio to the pass-through shrinks. That is why this bench
 * once reported 1.39× where the harness measured 3.4× on the same code.
 *
 * wrk checks status codes only (non-2xx count as errors); the bodies were
 * checked in the warm-up and the other phases.
 */
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ClosedLoopResult, Errors, type Target } from './load.ts';

export const WRK = ((): boolean => {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    // wrk prints its version and exits 1.
    return (error as { status?: number }).status === 1;
  }
})();

/** wrk -t1 -c`concurrency` for `seconds`; latency percentiles from wrk's own histogram. */
export function wrkClosedLoop(t: Target, concurrency: number, seconds: number): ClosedLoopResult {
  const script = join(tmpdir(), `switchyard-bench-wrk-${process.pid}.lua`);
  const headers = Object.entries(t.headers)
    .map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
    .join('\n');
  writeFileSync(
    script,
    `wrk.method = "POST"\nwrk.body = ${JSON.stringify(t.body)}\n${headers}\n` +
      'function done(s, lat, req)\n' +
      '  io.write(string.format("WRK %d %d %d %f %f %f %f %f\\n", s.requests, ' +
      's.errors.connect + s.errors.read + s.errors.write + s.errors.timeout, s.errors.status, ' +
      'lat:percentile(50), lat:percentile(90), lat:percentile(99), lat.max, lat.mean))\n' +
      'end\n',
  );
  try {
    const out = execFileSync(
      'wrk',
      [
        '-t1',
        `-c${concurrency}`,
        `-d${Math.max(1, Math.round(seconds))}s`,
        '--timeout',
        '10s',
        '-s',
        script,
        `${t.origin}${t.path}`,
      ],
      { encoding: 'utf8' },
    );
    const m = /WRK (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)/.exec(out);
    if (!m) throw new Error(`wrk printed no summary: ${out.slice(0, 300)}`);
    const [requests, transport, status, p50, p90, p99, max, mean] = m.slice(1).map(Number) as number[];
    const errors = new Errors();
    for (let i = 0; i < transport!; i++) errors.add('transport');
    for (let i = 0; i < status!; i++) errors.add('status');
    const ok = requests! - status!;
    const elapsed = Math.max(1, Math.round(seconds));
    return {
      concurrency,
      ok,
      rps: ok / elapsed,
      seconds: elapsed,
      samples: [],
      latencyUs: { n: ok, p50: p50!, p90: p90!, p99: p99!, max: max!, mean: mean! },
      errors,
    };
  } finally {
    rmSync(script, { force: true });
  }
}
