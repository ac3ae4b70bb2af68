/**
 * What `npm run bench` reports: the table (each path's numbers and the
 * aims), the notes under it (the evidence that the gateway did its work, CPU
 * use, warnings about a busy machine), the CPU profile summary, and the JSON
 * written to BENCH_OUT.
 */

import { cpus } from 'node:os';
import { STREAM_FRAMES } from './chat-workload.ts';
import type { ComponentResults } from './components.ts';
import type { GrowthResults } from './growth.ts';
import type { PathResult } from './measure.ts';
import { CLK_TCK } from './procs.ts';
import type { ProfileSummary } from './profile.ts';
import {
  AIMS,
  CONCURRENCY,
  GENERATOR_FLAGS,
  HOLD_RATE,
  HOLD_S,
  LOAD_CPU,
  PROFILE_S,
  PROXY_CPU,
  PROXY_NODE_FLAGS,
  RATE,
  SECONDS,
  STREAMS,
  WARMUP_S,
} from './settings.ts';

/** The three paths, as measured. */
export interface Paths {
  direct: PathResult;
  pass: PathResult;
  sy: PathResult;
}

/** What the gateway itself shows of the run: auth, metrics, access log and ledger. */
export interface GatewayEvidence {
  keyKind: 'virtual' | 'master';
  metricsOk200: number;
  unauthorizedStatus: number;
  accessLogLines: number;
  ledgerRows: number | null;
}

const r0 = (n: number | null | undefined): string =>
  n === null || n === undefined || !Number.isFinite(n) ? '-' : String(Math.round(n));
const r1 = (n: number | null | undefined): string =>
  n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(1);
const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISS');

export function table({ direct: d, pass: p, sy: s }: Paths, notes: string[]): string {
  // Added over the pass-through, as compare.sh's verdict judges.
  const addP50 = (x: PathResult) => x.latency.latencyUs.p50 - p.latency.latencyUs.p50;
  const addP99 = (x: PathResult) => x.latency.latencyUs.p99 - p.latency.latencyUs.p99;
  const sAdd50 = (x: PathResult) => x.stream.ttfbUs.p50 - p.stream.ttfbUs.p50;
  const sAdd99 = (x: PathResult) => x.stream.ttfbUs.p99 - p.stream.ttfbUs.p99;
  const rssRatio = (s.peakRssMb ?? Number.NaN) / (p.peakRssMb ?? Number.NaN);
  const ratio = (s.throughput.proxyCpuUsPerReq ?? Number.NaN) / (p.throughput.proxyCpuUsPerReq ?? Number.NaN);
  const hold = (x: PathResult) =>
    `${r0(x.hold.achievedRps)}/${r0(x.hold.latencyUs.p99)}/${x.hold.errors.total}`;
  const rows: string[][] = [
    ['metric', 'direct', 'passthrough', 'switchyard', 'aim'],
    [
      `p50 @${RATE}rps (µs)`,
      r0(d.latency.latencyUs.p50),
      r0(p.latency.latencyUs.p50),
      r0(s.latency.latencyUs.p50),
      '',
    ],
    [
      `p99 @${RATE}rps (µs)`,
      r0(d.latency.latencyUs.p99),
      r0(p.latency.latencyUs.p99),
      r0(s.latency.latencyUs.p99),
      '',
    ],
    [
      `added p50 @${RATE}rps over pt (µs)`,
      '-',
      '-',
      r0(addP50(s)),
      `≤ ${AIMS.addedP50Us} ${verdict(addP50(s) <= AIMS.addedP50Us)}`,
    ],
    [
      `added p99 @${RATE}rps over pt (µs)`,
      '-',
      '-',
      r0(addP99(s)),
      `≤ ${AIMS.addedP99Us} ${verdict(addP99(s) <= AIMS.addedP99Us)}`,
    ],
    [`rps @c=${CONCURRENCY}`, r0(d.throughput.rps), r0(p.throughput.rps), r0(s.throughput.rps), ''],
    [
      `p50/p99 @c=${CONCURRENCY} (µs)`,
      `${r0(d.throughput.latencyUs.p50)}/${r0(d.throughput.latencyUs.p99)}`,
      `${r0(p.throughput.latencyUs.p50)}/${r0(p.throughput.latencyUs.p99)}`,
      `${r0(s.throughput.latencyUs.p50)}/${r0(s.throughput.latencyUs.p99)}`,
      '',
    ],
    [
      `${HOLD_RATE} rps held (rps/p99µs/err)`,
      hold(d),
      hold(p),
      hold(s),
      `${verdict(s.hold.errors.total === 0 && s.hold.achievedRps >= HOLD_RATE * 0.97)}`,
    ],
    [
      'CPU µs/request (c=50)',
      '-',
      r1(p.throughput.proxyCpuUsPerReq),
      r1(s.throughput.proxyCpuUsPerReq),
      `≤ ${AIMS.cpuRatio}x pt: ${ratio.toFixed(2)}x ${verdict(ratio <= AIMS.cpuRatio)}`,
    ],
    [
      'CPU µs/request by round (c=50)',
      '-',
      (p.throughput.proxyCpuUsPerReqRounds ?? []).join(' '),
      (s.throughput.proxyCpuUsPerReqRounds ?? []).join(' '),
      'median above',
    ],
    [`CPU µs/request (${HOLD_RATE} rps)`, '-', r1(p.hold.proxyCpuUsPerReq), r1(s.hold.proxyCpuUsPerReq), ''],
    [
      'proxy core busy @c=50',
      '-',
      r1((p.throughput.proxyCpuBusy ?? Number.NaN) * 100) + '%',
      r1((s.throughput.proxyCpuBusy ?? Number.NaN) * 100) + '%',
      '',
    ],
    [
      'stream TTFB p50/p99 (µs)',
      `${r0(d.stream.ttfbUs.p50)}/${r0(d.stream.ttfbUs.p99)}`,
      `${r0(p.stream.ttfbUs.p50)}/${r0(p.stream.ttfbUs.p99)}`,
      `${r0(s.stream.ttfbUs.p50)}/${r0(s.stream.ttfbUs.p99)}`,
      '',
    ],
    [
      'stream TTFB p50 by round (µs)',
      d.ttfbP50ByRound.join(' '),
      p.ttfbP50ByRound.join(' '),
      s.ttfbP50ByRound.join(' '),
      '',
    ],
    [
      'stream TTFB added over pt p50/p99 (µs)',
      '-',
      '-',
      `${r0(sAdd50(s))}/${r0(sAdd99(s))}`,
      `≤ ${AIMS.streamAddedUs} (p50) ${verdict(sAdd50(s) <= AIMS.streamAddedUs)}`,
    ],
    [
      'peak RSS (MB)',
      '-',
      r1(p.peakRssMb),
      r1(s.peakRssMb),
      `≤ ${AIMS.rssRatio}x pt: ${rssRatio.toFixed(2)}x ${verdict(rssRatio <= AIMS.rssRatio)}`,
    ],
    [
      'errors',
      String(d.errors.total),
      String(p.errors.total),
      String(s.errors.total),
      verdict(s.errors.total === 0),
    ],
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const lines = rows.map((r) =>
    r
      .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd((widths[c] ?? 0) + 2)))
      .join('')
      .trimEnd(),
  );
  return [...lines, '', ...notes].join('\n');
}

/** Requests the gateway answered OK in the measured phases (the ledger should hold at least these). */
export function measuredOk(sy: PathResult): number {
  return sy.latency.ok + sy.throughput.ok + sy.hold.ok + sy.stream.ok;
}

/** The notes under the table: evidence, per-path CPU, warnings. */
export function runNotes({ direct, pass, sy }: Paths, gateway: GatewayEvidence): string[] {
  const notes: string[] = [];
  notes.push(
    `switchyard: auth with a ${gateway.keyKind} key (no key → HTTP ${gateway.unauthorizedStatus}); ` +
      `metrics counted ${gateway.metricsOk200} chat 200s; ${gateway.accessLogLines} access-log lines; ` +
      `${gateway.ledgerRows ?? '?'} ledger rows (≥ ${measuredOk(sy)} measured OK requests expected).`,
  );
  notes.push(
    `response ~${direct.responseBytes} B JSON; streams: ${STREAM_FRAMES} content frames. ` +
      `generator send lag p99 @${RATE}rps: ${r0(direct.latency.sendLagUs.p99)}/${r0(pass.latency.sendLagUs.p99)}/${r0(sy.latency.sendLagUs.p99)} µs; ` +
      `@${HOLD_RATE}rps: ${r0(direct.hold.sendLagUs.p99)}/${r0(pass.hold.sendLagUs.p99)}/${r0(sy.hold.sendLagUs.p99)} µs.`,
  );
  for (const x of [direct, pass, sy]) {
    const busy = Object.entries(x.throughput.coreBusy)
      .map(([c, v]) => `${c} ${Math.round(v * 100)}%`)
      .join(', ');
    notes.push(
      `${x.name} @c=${CONCURRENCY}: ${busy}; per request: mock ${r1(x.throughput.mockCpuUsPerReq)} µs, ` +
        `load generator ${r1(x.throughput.loaderCpuUsPerReq)} µs CPU; unattributed (kernel, other processes) ` +
        `${x.throughput.unattributedCores} cores.`,
    );
    if (x.throughput.unattributedCores > 0.3) {
      notes.push(
        `WARNING: ${x.name}: much CPU used outside the benchmark's processes: was something else running?`,
      );
    }
    if (x.errors.total > 0) notes.push(`${x.name} errors: ${JSON.stringify(x.errors)}`);
  }
  notes.push(
    `the pass-through runs on this project's Node (${process.version}) and undici with the gateway's node flags; ` +
      "compare.sh runs its own on the system's node (v20 on this VM) with undici 6. Not measured in this run: " +
      "side by side under compare.sh's load on 2026-12-01 the two cost 44.2 vs 43.7 µs CPU and 113 vs 106 MB " +
      'peak RSS at c=50 (bench/passthrough-proxy.mjs).',
  );
  const tput = Math.max(direct.throughput.rps, pass.throughput.rps);
  if ((pass.throughput.proxyCpuBusy ?? 1) < 0.9) {
    notes.push(
      `note: the pass-through proxy used ${r0((pass.throughput.proxyCpuBusy ?? 0) * 100)}% of CPU ${PROXY_CPU} at c=${CONCURRENCY}: ` +
        `its rps (${r0(tput)}) is bounded by the load side (CPU ${LOAD_CPU}), not by the proxy.`,
    );
  }
  if (PROXY_NODE_FLAGS.length > 0) notes.push(`proxies ran with node flags: ${PROXY_NODE_FLAGS.join(' ')}`);
  return notes;
}

/** The gateway's hot functions and modules under load. */
export function profileText(profile: ProfileSummary): string {
  const fnLines = profile.functions
    .slice(0, 10)
    .map(
      (f, i) =>
        `${String(i + 1).padStart(2)}. ${f.pct.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}` +
        (f.caller ? `\n            ← ${f.caller}` : ''),
    );
  const modLines = profile.modules.map((m) => `    ${m.pct.toFixed(1).padStart(5)}%  ${m.name}`);
  return (
    `\nswitchyard CPU profile (self time, ${profile.sampledMs} ms busy sampled, ${PROFILE_S}s at c=${CONCURRENCY}):\n` +
    `${fnLines.join('\n')}\n  by module:\n${modLines.join('\n')}\n`
  );
}

export interface RunFacts {
  startedAt: number;
  git: string | null;
  cores: number;
  pinned: boolean;
  quietBeforeRun: { busyCores: number; waitedS: number };
}

/** Everything written to BENCH_OUT. */
export function resultJson(
  run: RunFacts,
  paths: Paths,
  gateway: GatewayEvidence,
  extra: {
    profile: ProfileSummary | undefined;
    components: ComponentResults | null;
    notes: string[];
    table: string;
    growth: GrowthResults;
  },
): Record<string, unknown> {
  const { direct, pass, sy } = paths;
  return {
    when: new Date(run.startedAt).toISOString(),
    git: run.git,
    node: process.version,
    cpu: cpus()[0]?.model ?? null,
    cores: run.cores,
    pinned: run.pinned,
    quietBeforeRun: run.quietBeforeRun,
    settings: {
      generatorNodeFlags: GENERATOR_FLAGS,
      seconds: SECONDS,
      warmupSeconds: WARMUP_S,
      holdSeconds: HOLD_S,
      rate: RATE,
      holdRate: HOLD_RATE,
      concurrency: CONCURRENCY,
      streams: STREAMS,
      streamFrames: STREAM_FRAMES,
      clkTck: CLK_TCK,
      proxyNodeFlags: PROXY_NODE_FLAGS,
    },
    aims: AIMS,
    summary: {
      addedP50Us: {
        passthrough: pass.latency.latencyUs.p50 - direct.latency.latencyUs.p50,
        switchyard: sy.latency.latencyUs.p50 - direct.latency.latencyUs.p50,
      },
      addedP99Us: {
        passthrough: pass.latency.latencyUs.p99 - direct.latency.latencyUs.p99,
        switchyard: sy.latency.latencyUs.p99 - direct.latency.latencyUs.p99,
      },
      rps: { direct: direct.throughput.rps, passthrough: pass.throughput.rps, switchyard: sy.throughput.rps },
      cpuUsPerRequest: {
        passthrough: pass.throughput.proxyCpuUsPerReq,
        switchyard: sy.throughput.proxyCpuUsPerReq,
      },
      cpuRatio:
        (sy.throughput.proxyCpuUsPerReq ?? Number.NaN) / (pass.throughput.proxyCpuUsPerReq ?? Number.NaN),
      streamTtfbAddedUs: {
        passthrough: {
          p50: pass.stream.ttfbUs.p50 - direct.stream.ttfbUs.p50,
          p99: pass.stream.ttfbUs.p99 - direct.stream.ttfbUs.p99,
        },
        switchyard: {
          p50: sy.stream.ttfbUs.p50 - direct.stream.ttfbUs.p50,
          p99: sy.stream.ttfbUs.p99 - direct.stream.ttfbUs.p99,
        },
      },
      peakRssMb: { passthrough: pass.peakRssMb, switchyard: sy.peakRssMb },
      errors: { direct: direct.errors.total, passthrough: pass.errors.total, switchyard: sy.errors.total },
    },
    gateway: { ...gateway, measuredOk: measuredOk(sy) },
    paths: { direct, passthrough: pass, switchyard: sy },
    profile: extra.profile ?? null,
    components: extra.components,
    notes: extra.notes,
    table: extra.table,
    growth: extra.growth,
    runtimeSeconds: Math.round((Date.now() - run.startedAt) / 100) / 10,
  };
}
