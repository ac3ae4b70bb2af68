/**
 * The measurement phases of `npm run bench`, for every path alike: warm-up,
 * open-loop latency at a fixed rate, closed-loop throughput (with the CPU
 * time each process spent; wrk when installed, as compare.sh measures it), an
 * open-loop hold at a high rate, and streams 20 at a time (time to first byte). Rate, throughput and stream phases run in
 * interleaved rounds (see `measureAll`).
 */
import type { Pool } from 'undici';
import { chatTarget, checkStream, jsonBody, STREAM_FRAMES, streamBody } from './chat-workload.ts';
import {
  type ClosedLoopResult,
  closedLoop,
  concurrent,
  Errors,
  makePool,
  mergeClosed,
  mergeOpen,
  mergeSequential,
  type OpenLoopResult,
  openLoop,
  type SequentialResult,
  sequential,
  type Target,
} from './load.ts';
import { CLK_TCK, coreBusy, coreTimes, cpuTimeUs, statusKb } from './procs.ts';
import {
  CLOSED_ROUND_S,
  CLOSED_ROUNDS,
  CLOSED_WARMUP_S,
  CONCURRENCY,
  FRAME_INTERVAL_MS,
  HOLD_RATE,
  HOLD_S,
  log,
  RATE,
  ROUNDS,
  SECONDS,
  STREAM_CONCURRENCY,
  STREAM_ROUNDS,
  STREAMS,
  WARMUP_S,
} from './settings.ts';
import { WRK, wrkClosedLoop } from './wrk.ts';

export interface Throughput extends ClosedLoopResult {
  /** The median round's CPU per request (see CLOSED_ROUNDS). */
  proxyCpuUsPerReq: number | null;
  /** Each round's, in the order they ran. */
  proxyCpuUsPerReqRounds: number[] | null;
  proxyCpuBusy: number | null;
  mockCpuUsPerReq: number;
  loaderCpuUsPerReq: number;
  coreBusy: Record<string, number>;
  /** CPU (fraction of one core) used by anything but the proxy, the mock and this process: kernel softirq, other processes. */
  unattributedCores: number;
}

/** Busy CPU time of all cores between two readings, µs. */
function busyUs(
  before: Map<string, { busy: number; total: number }>,
  after: Map<string, { busy: number; total: number }>,
): number {
  let jiffies = 0;
  for (const [cpu, a] of after) jiffies += a.busy - (before.get(cpu)?.busy ?? a.busy);
  return (jiffies * 1e6) / CLK_TCK;
}

/** Waits (bounded) until the machine is nearly idle, so other work does not skew the numbers. */
export async function waitForQuiet(maxSeconds: number): Promise<{ busyCores: number; waitedS: number }> {
  const started = Date.now();
  let busy = 0;
  for (let i = 0; i < Math.max(1, Math.ceil(maxSeconds)); i++) {
    const a = coreTimes();
    await new Promise((r) => setTimeout(r, 1000));
    busy = busyUs(a, coreTimes()) / 1e6;
    if (busy < 0.15 || (Date.now() - started) / 1000 >= maxSeconds) break;
    if (i === 0)
      log(`machine busy (${busy.toFixed(2)} cores in use): waiting up to ${maxSeconds}s for quiet`);
  }
  return { busyCores: Math.round(busy * 100) / 100, waitedS: Math.round((Date.now() - started) / 100) / 10 };
}

export interface PathResult {
  name: string;
  latency: OpenLoopResult;
  throughput: Throughput;
  hold: OpenLoopResult & { proxyCpuUsPerReq: number | null };
  stream: SequentialResult;
  /** Each stream round's time-to-first-byte median, µs (the merged one is `stream.ttfbUs.p50`). */
  ttfbP50ByRound: number[];
  peakRssMb: number | null;
  responseBytes: number;
  errors: Errors;
}

export interface PathSpec {
  name: string;
  origin: string;
  auth: string;
  /** The proxy under test (null for direct). */
  proxyPid: number | null;
}

interface TputRound {
  result: ClosedLoopResult;
  proxyCpu: number | null;
  mockCpu: number;
  selfCpu: number;
  busy: number;
  cores: Record<string, number>;
}

interface PathState extends PathSpec {
  pool: Pool;
  json: Target;
  stream: Target;
  warmErrors: Errors;
  latency: OpenLoopResult[];
  tput: TputRound[];
  streams: SequentialResult[];
}

function throughputOf(rounds: TputRound[]): Throughput {
  const merged = mergeClosed(rounds.map((r) => r.result));
  const served = Math.max(1, merged.ok + merged.errors.total);
  const sum = (f: (r: TputRound) => number): number => rounds.reduce((a, r) => a + f(r), 0);
  const proxyCpu = rounds.some((r) => r.proxyCpu === null) ? null : sum((r) => r.proxyCpu ?? 0);
  const perRound =
    proxyCpu === null
      ? null
      : rounds.map((r) => (r.proxyCpu ?? 0) / Math.max(1, r.result.ok + r.result.errors.total));
  const cores: Record<string, number> = {};
  for (const r of rounds) {
    for (const [c, v] of Object.entries(r.cores)) cores[c] = (cores[c] ?? 0) + v / rounds.length;
  }
  for (const c of Object.keys(cores)) cores[c] = Math.round((cores[c] ?? 0) * 1000) / 1000;
  const wallUs = merged.seconds * 1e6;
  return {
    ...merged,
    proxyCpuUsPerReq: perRound === null ? null : median(perRound),
    proxyCpuUsPerReqRounds: perRound === null ? null : perRound.map((us) => Math.round(us * 10) / 10),
    proxyCpuBusy: proxyCpu === null ? null : Math.round((proxyCpu / wallUs) * 1000) / 1000,
    mockCpuUsPerReq: sum((r) => r.mockCpu) / served,
    loaderCpuUsPerReq: sum((r) => r.selfCpu) / served,
    coreBusy: cores,
    unattributedCores:
      Math.round(
        ((sum((r) => r.busy) - (proxyCpu ?? 0) - sum((r) => r.mockCpu) - sum((r) => r.selfCpu)) / wallUs) *
          100,
      ) / 100,
  };
}

/** The middle value (the lower of the two middle ones for an even count, as compare.sh's verdict takes it). */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
}

/**
 * Measures every path, phase by phase. The fixed-rate, throughput and streaming phases run in
 * ROUNDS interleaved rounds (direct, passthrough, switchyard, then again in rotated order), so
 * drift of a noisy machine hits all paths alike instead of whichever ran last.
 */
export async function measureAll(specs: PathSpec[], mockPid: number): Promise<PathResult[]> {
  const states: PathState[] = specs.map((spec) => {
    const json = chatTarget(spec.name, spec.origin, spec.auth);
    return {
      ...spec,
      pool: makePool(spec.origin, Math.max(CONCURRENCY, 64)),
      json,
      stream: { ...json, body: streamBody, check: checkStream },
      warmErrors: new Errors(),
      latency: [],
      tput: [],
      streams: [],
    };
  });
  const inRounds = async (
    what: string,
    fn: (s: PathState, round: number) => Promise<void>,
    rounds = ROUNDS,
  ): Promise<void> => {
    log(what);
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < states.length; i++) {
        const s = states[(i + round) % states.length]!;
        await fn(s, round);
      }
    }
  };
  try {
    for (const s of states) {
      log(`${s.name}: warm-up ${WARMUP_S}s`);
      const warm = await closedLoop(s.pool, s.json, 8, WARMUP_S);
      if (warm.ok === 0) {
        throw new Error(`${s.name}: no successful request in warm-up: ${JSON.stringify(warm.errors)}`);
      }
      s.warmErrors.merge(warm.errors);
      s.warmErrors.merge((await openLoop(s.pool, s.json, RATE, Math.min(1, WARMUP_S))).errors);
      s.warmErrors.merge((await sequential(s.pool, s.stream, Math.min(20, STREAMS), 0)).errors);
    }

    await inRounds(`open loop ${RATE} rps: ${ROUNDS} rounds × ${SECONDS / ROUNDS}s per path`, async (s) => {
      s.latency.push(await openLoop(s.pool, s.json, RATE, SECONDS / ROUNDS));
    });

    await inRounds(
      `closed loop c=${CONCURRENCY} (${WRK ? 'wrk' : 'undici: install wrk to measure as compare.sh does'}): ${CLOSED_ROUNDS} rounds × ${CLOSED_ROUND_S}s per path, each after ${CLOSED_WARMUP_S}s of warm-up`,
      async (s) => {
        // compare.sh's bench.mjs warms every target up (10 connections) right before its closed loop.
        if (CLOSED_WARMUP_S > 0)
          s.warmErrors.merge((await closedLoop(s.pool, s.json, 10, CLOSED_WARMUP_S)).errors);
        const cpu0 = s.proxyPid === null ? 0 : cpuTimeUs(s.proxyPid);
        const mock0 = cpuTimeUs(mockPid);
        const self0 = process.cpuUsage();
        const cores0 = coreTimes();
        const result = WRK
          ? wrkClosedLoop(s.json, CONCURRENCY, CLOSED_ROUND_S)
          : await closedLoop(s.pool, s.json, CONCURRENCY, CLOSED_ROUND_S);
        const cores1 = coreTimes();
        const selfD = process.cpuUsage(self0);
        s.tput.push({
          result,
          proxyCpu: s.proxyPid === null ? null : cpuTimeUs(s.proxyPid) - cpu0,
          mockCpu: cpuTimeUs(mockPid) - mock0,
          selfCpu: selfD.user + selfD.system,
          busy: busyUs(cores0, cores1),
          cores: coreBusy(cores0, cores1),
        });
      },
      CLOSED_ROUNDS,
    );

    const holds = new Map<string, PathResult['hold']>();
    for (const s of states) {
      log(`${s.name}: open loop ${HOLD_RATE} rps × ${HOLD_S}s`);
      const h0 = s.proxyPid === null ? 0 : cpuTimeUs(s.proxyPid);
      const run = await openLoop(s.pool, s.json, HOLD_RATE, HOLD_S);
      const cpu = s.proxyPid === null ? null : cpuTimeUs(s.proxyPid) - h0;
      holds.set(s.name, { ...run, proxyCpuUsPerReq: cpu === null ? null : cpu / Math.max(run.sent, 1) });
    }

    await inRounds(
      `streams (${STREAM_FRAMES} frames ${FRAME_INTERVAL_MS} ms apart, ${STREAM_CONCURRENCY} at a time): ${STREAM_ROUNDS} rounds × ${STREAMS} per path`,
      async (s) => {
        s.streams.push(await concurrent(s.pool, s.stream, STREAMS, STREAM_CONCURRENCY));
      },
      STREAM_ROUNDS,
    );

    const results: PathResult[] = [];
    for (const s of states) {
      // One more request to record the response size (a sanity check on "~1 KB").
      const probe = await s.pool.request({
        method: 'POST',
        path: s.json.path,
        headers: s.json.headers,
        body: jsonBody,
      });
      const responseBytes = (await probe.body.text()).length;
      const latency = mergeOpen(s.latency);
      const throughput = throughputOf(s.tput);
      const hold = holds.get(s.name)!;
      const stream = mergeSequential(s.streams);
      const errors = new Errors();
      for (const e of [s.warmErrors, latency.errors, throughput.errors, hold.errors, stream.errors])
        errors.merge(e);
      results.push({
        name: s.name,
        latency,
        throughput,
        hold,
        stream,
        ttfbP50ByRound: s.streams.map((r) => Math.round(r.ttfbUs.p50)),
        peakRssMb: s.proxyPid === null ? null : statusKb(s.proxyPid, 'VmHWM') / 1024,
        responseBytes,
        errors,
      });
    }
    return results;
  } finally {
    for (const s of states) await s.pool.close();
  }
}
