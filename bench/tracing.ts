/**
 * What tracing costs, off vs on, two ways:
 *
 * 1. micro: bench/dispatch.ts's hot path (UsageRecorder, dispatch, the
 *    attempt's row, request metrics) with NO_TRACING, as an untraced
 *    gateway runs it, and under a real OpenTelemetry request span (the
 *    official SDK, a BatchSpanProcessor, the OTLP/HTTP exporter sending to a
 *    sink in another process): µs and bytes per op.
 * 2. gateway: two `switchyard start` processes, the same config, one with
 *    OTEL_EXPORTER_OTLP_ENDPOINT set, pinned to the proxy core in turn, under
 *    wrk at c=50 (as `npm run bench` measures): the gateway's CPU per request
 *    (from /proc), and the spans the sink received per request.
 *
 * The batch processor's queue is raised to 65,536 spans (OTEL_BSP_MAX_QUEUE_SIZE)
 * so that no span is dropped at thousands of requests a second: the cost
 * measured is the cost of exporting every span.
 *
 *   node bench/tracing.ts [--rounds=3] [--seconds=3] [--micro-only] [--gateway-only] [--json]
 */
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { createTracing, NO_TRACING, type Tracing } from '../src/observability/tracing.ts';
import { chatTarget } from './chat-workload.ts';
import { benchDispatch, type DispatchBenchCase } from './dispatch.ts';
import { childEnv, type GatewaySetup, prepareGateway } from './gateway-process.ts';
import { closedLoop, makePool } from './load.ts';
import { cpuTimeUs, killAll, pinSelf, type Started, startNode } from './procs.ts';
import { CONCURRENCY, LOAD_CPU, log, PROXY_CPU, PROXY_NODE_FLAGS, ROOT } from './settings.ts';
import { WRK, wrkClosedLoop } from './wrk.ts';

const BSP_ENV = { OTEL_BSP_MAX_QUEUE_SIZE: '65536' };

interface SinkCount {
  exports: number;
  spans: number;
  bytes: number;
}

export interface TracingBenchResult {
  micro?: Array<{ name: string; off: { us: number; bytes: number }; on: { us: number; bytes: number } }>;
  microSpans?: { expected: number; received: number };
  gateway?: { rounds: GatewayRound[]; medianUs: Record<Arm, number> };
}

/** Tracing off; on, every request traced; on, one trace in ten sampled. */
const ARMS = ['off', 'on', 'sampled'] as const;
type Arm = (typeof ARMS)[number];
type GatewayRound = Record<Arm, { us: number; rps: number; spansPerRequest: number }>;

function flag(name: string): number | undefined {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? Number(arg.slice(name.length + 3)) : undefined;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function startSink(): Promise<{ proc: Started; url: string; count(): Promise<SinkCount> }> {
  const proc = startNode([join(ROOT, 'bench/otlp-sink.ts')], { stdout: 'pipe', cpu: LOAD_CPU });
  const { port } = JSON.parse(await proc.ready) as { port: number };
  const url = `http://127.0.0.1:${port}`;
  return {
    proc,
    url,
    count: async () => (await (await fetch(`${url}/count`)).json()) as SinkCount,
  };
}

async function micro(
  sink: Awaited<ReturnType<typeof startSink>>,
  rounds: number,
): Promise<Pick<TracingBenchResult, 'micro' | 'microSpans'>> {
  Object.assign(process.env, { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, ...BSP_ENV });
  const tracing: Tracing = await createTracing({ captureContent: false, warn: (m) => log(m) });
  for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', ...Object.keys(BSP_ENV)]) delete process.env[name];
  const runs = 3;
  const opsPerRun = 30_000;
  const warmupOps = 10_000;
  const off: DispatchBenchCase[][] = [];
  const on: DispatchBenchCase[][] = [];
  const before = await sink.count();
  for (let round = 0; round < rounds; round++) {
    log(`tracing micro: round ${round + 1}/${rounds}`);
    off.push(await benchDispatch({ runs, opsPerRun, warmupOps, tracing: NO_TRACING }));
    on.push(await benchDispatch({ runs, opsPerRun, warmupOps, tracing }));
  }
  await tracing.shutdown();
  const after = await sink.count();
  const cases = off[0]!.length;
  // A request span and one attempt span per op (the first target answers in every case).
  const expected = rounds * cases * (warmupOps + runs * opsPerRun) * 2;
  return {
    micro: off[0]!.map((c, i) => ({
      name: c.name.replace(/\s+/g, ' '),
      off: { us: median(off.map((r) => r[i]!.usPerOp)), bytes: median(off.map((r) => r[i]!.bytesPerOp)) },
      on: { us: median(on.map((r) => r[i]!.usPerOp)), bytes: median(on.map((r) => r[i]!.bytesPerOp)) },
    })),
    microSpans: { expected, received: after.spans - before.spans },
  };
}

function startGatewayWith(g: GatewaySetup, env: Record<string, string>, name: string): Started {
  return startNode(
    [...PROXY_NODE_FLAGS, join(ROOT, 'bin/switchyard.js'), 'start', '--config', g.configPath],
    {
      cpu: PROXY_CPU,
      cwd: g.dir,
      env: childEnv({ PORT: '0', LOG_LEVEL: 'info', SWITCHYARD_MASTER_KEY: g.masterKey, ...env }),
      stdout: openSync(join(g.dir, `${name}.log`), 'a'),
      readyOn: /listening on (http:\/\/\S+)/,
      readyTimeoutMs: 60_000,
    },
  );
}

async function load(origin: string, key: string, seconds: number): Promise<number> {
  const target = chatTarget('gateway', origin, key);
  if (WRK) return wrkClosedLoop(target, CONCURRENCY, seconds).ok;
  const pool = makePool(origin, CONCURRENCY);
  try {
    return (await closedLoop(pool, target, CONCURRENCY, seconds)).ok;
  } finally {
    await pool.close();
  }
}

async function gateway(
  sink: Awaited<ReturnType<typeof startSink>>,
  rounds: number,
  seconds: number,
): Promise<TracingBenchResult['gateway']> {
  const upstream = startNode([join(ROOT, 'bench/bench-upstream.ts'), '--port', '0'], {
    stdout: 'pipe',
    cpu: LOAD_CPU,
  });
  const { port } = JSON.parse(await upstream.ready) as { port: number };
  const mockUrl = `http://127.0.0.1:${port}`;
  const setups = {
    off: prepareGateway(mockUrl),
    on: prepareGateway(mockUrl),
    sampled: prepareGateway(mockUrl),
  };
  const exporting = { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, ...BSP_ENV };
  const procs = {
    off: startGatewayWith(setups.off, {}, 'off'),
    on: startGatewayWith(setups.on, exporting, 'on'),
    // One trace in ten, as a busy deployment would sample.
    sampled: startGatewayWith(
      setups.sampled,
      { ...exporting, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' },
      'sampled',
    ),
  };
  const urls = { off: await procs.off.ready, on: await procs.on.ready, sampled: await procs.sampled.ready };
  for (const arm of ARMS) await load(urls[arm], setups[arm].virtualKey, 2);
  const results: GatewayRound[] = [];
  for (let round = 0; round < rounds; round++) {
    const row = {} as GatewayRound;
    // Rotating which goes first, so a neighbour's burst does not always land on one arm.
    for (let i = 0; i < ARMS.length; i++) {
      const arm = ARMS[(i + round) % ARMS.length]!;
      const spansBefore = (await sink.count()).spans;
      const cpuBefore = cpuTimeUs(procs[arm].pid);
      const started = performance.now();
      const ok = await load(urls[arm], setups[arm].virtualKey, seconds);
      const elapsedS = (performance.now() - started) / 1000;
      const us = (cpuTimeUs(procs[arm].pid) - cpuBefore) / ok;
      // Let the batch processor send what it holds (it exports every 5 s), then count.
      if (arm !== 'off') await new Promise((resolve) => setTimeout(resolve, 6_000));
      row[arm] = { us, rps: ok / elapsedS, spansPerRequest: ((await sink.count()).spans - spansBefore) / ok };
    }
    log(
      `tracing gateway round ${round + 1}: ` +
        ARMS.map(
          (a) => `${a} ${row[a].us.toFixed(1)} µs/req (${row[a].spansPerRequest.toFixed(2)} spans/req)`,
        ).join(', '),
    );
    results.push(row);
  }
  await Promise.all([...ARMS.map((a) => procs[a].stop()), upstream.stop()]);
  return {
    rounds: results,
    medianUs: {
      off: median(results.map((r) => r.off.us)),
      on: median(results.map((r) => r.on.us)),
      sampled: median(results.map((r) => r.sampled.us)),
    },
  };
}

export async function benchTracing(
  options: { rounds?: number; seconds?: number; micro?: boolean; gateway?: boolean } = {},
): Promise<TracingBenchResult> {
  const rounds = options.rounds ?? 3;
  const sink = await startSink();
  try {
    return {
      ...(options.micro !== false ? await micro(sink, rounds) : {}),
      ...(options.gateway !== false ? { gateway: await gateway(sink, rounds, options.seconds ?? 3) } : {}),
    };
  } finally {
    await sink.proc.stop();
  }
}

if (import.meta.main) {
  pinSelf(LOAD_CPU);
  process.on('exit', killAll);
  const result = await benchTracing({
    rounds: flag('rounds') ?? 3,
    seconds: flag('seconds') ?? 3,
    micro: !process.argv.includes('--gateway-only'),
    gateway: !process.argv.includes('--micro-only'),
  });
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    if (result.micro) {
      console.log('dispatch hot path                          off µs/op  on µs/op   off B/op   on B/op');
      for (const c of result.micro) {
        console.log(
          `${c.name.padEnd(42)} ${c.off.us.toFixed(2).padStart(9)} ${c.on.us.toFixed(2).padStart(9)} ${Math.round(c.off.bytes).toString().padStart(10)} ${Math.round(c.on.bytes).toString().padStart(9)}`,
        );
      }
      // The loop never yields long enough for the exporter: most spans are dropped at the full
      // queue, so these numbers are span creation and ending; the gateway bench has the export.
      console.log(
        `spans exported while it ran: ${result.microSpans?.received} of ${result.microSpans?.expected} (the rest dropped at the full queue)`,
      );
    }
    if (result.gateway) {
      console.log('gateway CPU µs/request at c=50 (rps, spans/request)');
      for (const [i, r] of result.gateway.rounds.entries()) {
        console.log(
          `round ${i + 1}  ` +
            ARMS.map(
              (a) =>
                `${a} ${r[a].us.toFixed(1)} (${Math.round(r[a].rps)} rps, ${r[a].spansPerRequest.toFixed(2)})`,
            ).join('   '),
        );
      }
      const m = result.gateway.medianUs;
      console.log(
        `median   off ${m.off.toFixed(1)}   on ${m.on.toFixed(1)}   sampled 10% ${m.sampled.toFixed(1)}`,
      );
    }
  }
}
