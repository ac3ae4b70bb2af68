/**
 * `npm run bench`: what Switchyard adds over a bare Node proxy, measured in one run.
 *
 * Three paths to the same OpenAI upstream (bench/bench-upstream.ts, canned answers):
 *   direct       load generator → mock
 *   passthrough  → bench/passthrough-proxy.mjs (node:http + undici Pool: the floor) → mock
 *   switchyard   → `switchyard start` (virtual key auth, metrics, info logs, SQLite ledger) → mock
 *
 * The proxy under test runs on CPU 1; this process (the load generator) and the mock on
 * CPU 0 (taskset), as compare.sh pins them. Phases per path: warm-up, open-loop latency at
 * a fixed rate, closed-loop throughput (with the proxy's CPU time per request), an
 * open-loop hold at a high rate, streams 20 at a time (time to first byte). Prints one table; writes bench/results/latest.json.
 *
 * Then the component benchmarks (bench/components.ts) in a process of their own.
 *
 * Files: bench/settings.ts (the environment below, aims), bench/chat-workload.ts (the requests
 * and their checks), bench/gateway-process.ts (the gateway's config, key, process and evidence),
 * bench/measure.ts (the phases), bench/report.ts (table, notes, JSON); this file starts the
 * processes and runs the steps in order (`main`).
 *
 * Environment (for a quick smoke run, e.g. BENCH_SECONDS=2 BENCH_STREAMS=20):
 *   BENCH_SECONDS (10)        latency and throughput phase length
 *   BENCH_WARMUP_SECONDS (2)  BENCH_HOLD_SECONDS (5)
 *   BENCH_RATE (200)          BENCH_HOLD_RATE (1000)     BENCH_CONCURRENCY (50)
 *   BENCH_ROUNDS (5)          interleaved rounds per phase (all paths take turns)
 *   BENCH_CLOSED_ROUNDS (3)   BENCH_CLOSED_ROUND_SECONDS (5)   BENCH_CLOSED_WARMUP_SECONDS (2)
 *                             the closed loop, as compare.sh runs it (CPU per request: the median round)
 *   BENCH_STREAMS (200)       streams a round   BENCH_STREAM_ROUNDS (3)
 *   BENCH_STREAM_CONCURRENCY (20)   BENCH_FRAME_INTERVAL_MS (5)
 *   BENCH_PROFILE (0)  seconds of --cpu-prof'd gateway load (also `--profile`)
 *   BENCH_QUIET_WAIT_SECONDS (60)  how long to wait for an idle machine first
 *   BENCH_OUT (bench/results/latest.json)
 *   BENCH_PROXY_NODE_FLAGS    extra node flags for both proxies, e.g. "--max-semi-space-size=2"
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { chatTarget } from './chat-workload.ts';
import { type ComponentResults, componentTable } from './components.ts';
import {
  childEnv,
  countLedgerRows,
  countLogLines,
  type GatewaySetup,
  gatewayEvidence,
  prepareGateway,
  profileGateway,
  startGateway,
} from './gateway-process.ts';
import {
  GROWTH_SECONDS,
  type GrowthResults,
  growthMarkdown,
  measureCacheHits,
  measureCores,
  measurePromptsAndConnections,
  measureSlowStreams,
  type ProxyUnderTest,
  SLOW_STREAMS,
} from './growth.ts';
import { closedLoop, makePool, withoutSamples } from './load.ts';
import { measureAll, type PathResult, waitForQuiet } from './measure.ts';
import { CLK_TCK, cpuCount, killAll, pinSelf, type Started, startNode, statusKb, TASKSET } from './procs.ts';
import { type GatewayEvidence, type Paths, profileText, resultJson, runNotes, table } from './report.ts';
import {
  FRAME_INTERVAL_MS,
  GENERATOR_FLAGS,
  LOAD_CPU,
  log,
  OUT,
  PROFILE_S,
  PROXY_CPU,
  PROXY_NODE_FLAGS,
  QUIET_WAIT_S,
  ROOT,
  WARMUP_S,
} from './settings.ts';
import { WRK } from './wrk.ts';

// ---------------------------------------------------------------------------------------
// Main: one named step after another
// ---------------------------------------------------------------------------------------

interface Machine {
  cores: number;
  pinned: boolean;
  quiet: { busyCores: number; waitedS: number };
  /** What the table should say about the machine (unpinned, busy). */
  notes: string[];
}

/** Pins this process to LOAD_CPU when it can and waits (bounded) for an idle machine. */
async function prepareMachine(): Promise<Machine> {
  const notes: string[] = [];
  const cores = cpuCount();
  let pinned = false;
  if (!TASKSET) notes.push('NOTE: taskset not found: running unpinned (numbers are noisier).');
  else if (cores < 2) notes.push(`NOTE: only ${cores} CPU: running unpinned.`);
  else pinned = pinSelf(LOAD_CPU);
  const quiet = await waitForQuiet(QUIET_WAIT_S);
  if (quiet.busyCores >= 0.15) {
    notes.push(
      `WARNING: the machine was busy before the run (${quiet.busyCores} cores in use by other processes): numbers are skewed.`,
    );
  }
  log(
    `node ${process.version}, ${cores} CPUs (${cpus()[0]?.model ?? '?'}), CLK_TCK ${CLK_TCK}, ` +
      (pinned ? `pinned: proxy on CPU ${PROXY_CPU}, load + mock on CPU ${LOAD_CPU}` : 'unpinned'),
  );
  return { cores, pinned, quiet, notes };
}

interface Processes {
  mock: Started;
  mockUrl: string;
  /** The same upstream sending a frame every 500 ms (the growth phase's slow streams). */
  slowMock: Started;
  passthrough: Started;
  passthroughUrl: string;
  setup: GatewaySetup;
  gatewayLog: string;
  gateway: Started;
  gatewayUrl: string;
}

/** The mock upstream (LOAD_CPU), then the pass-through proxy and the gateway under test (PROXY_CPU). */
async function startProcesses(machine: Machine): Promise<Processes> {
  const cpuFor = (cpu: number): number | undefined => (machine.pinned ? cpu : undefined);
  // The mock is not under test: small semi-spaces keep its GC pauses out of the tails too.
  const mock = startNode(
    [
      ...GENERATOR_FLAGS,
      join(ROOT, 'bench/bench-upstream.ts'),
      '--port',
      '0',
      '--frame-interval-ms',
      String(FRAME_INTERVAL_MS),
    ],
    { cpu: cpuFor(LOAD_CPU), env: childEnv(), stdout: 'pipe' },
  );
  const mockUrl = `http://127.0.0.1:${(JSON.parse(await mock.ready) as { port: number }).port}`;
  const slowMock = startNode(
    [...GENERATOR_FLAGS, join(ROOT, 'bench/bench-upstream.ts'), '--port', '0', '--frame-interval-ms', '500'],
    { cpu: cpuFor(LOAD_CPU), env: childEnv(), stdout: 'pipe' },
  );
  const slowMockUrl = `http://127.0.0.1:${(JSON.parse(await slowMock.ready) as { port: number }).port}`;
  const passthrough = startNode(
    [...PROXY_NODE_FLAGS, join(ROOT, 'bench/passthrough-proxy.mjs'), '--upstream', mockUrl],
    { cpu: cpuFor(PROXY_CPU), env: childEnv(), stdout: 'pipe' },
  );
  const passthroughUrl = `http://127.0.0.1:${(JSON.parse(await passthrough.ready) as { port: number }).port}`;
  const setup = prepareGateway(mockUrl, slowMockUrl);
  const gatewayLog = join(setup.dir, 'gateway.log');
  const gateway = startGateway(setup, gatewayLog, [], cpuFor(PROXY_CPU));
  const gatewayUrl = await gateway.ready;
  log(
    `mock ${mockUrl} (pid ${mock.pid}), passthrough ${passthroughUrl} (pid ${passthrough.pid}), switchyard ${gatewayUrl} (pid ${gateway.pid})`,
  );
  return { mock, mockUrl, slowMock, passthrough, passthroughUrl, setup, gatewayLog, gateway, gatewayUrl };
}

/** Every phase on every path. */
async function measurePaths(p: Processes): Promise<Paths> {
  const [direct, pass, sy] = (await measureAll(
    [
      { name: 'direct', origin: p.mockUrl, auth: 'sk-bench-upstream', proxyPid: null },
      {
        name: 'passthrough',
        origin: p.passthroughUrl,
        auth: 'sk-bench-upstream',
        proxyPid: p.passthrough.pid,
      },
      { name: 'switchyard', origin: p.gatewayUrl, auth: p.setup.virtualKey, proxyPid: p.gateway.pid },
    ],
    p.mock.pid,
  )) as [PathResult, PathResult, PathResult];
  return { direct, pass, sy };
}

/** Peak memory of the side-by-side phases and the gateway's own evidence, read before anything else runs. */
async function readEvidence(p: Processes, paths: Paths): Promise<GatewayEvidence> {
  const counters = await gatewayEvidence(p.gatewayUrl);
  paths.pass.peakRssMb = statusKb(p.passthrough.pid, 'VmHWM') / 1024;
  paths.sy.peakRssMb = statusKb(p.gateway.pid, 'VmHWM') / 1024;
  return {
    keyKind: p.setup.keyKind,
    ...counters,
    accessLogLines: countLogLines(p.gatewayLog),
    ledgerRows: countLedgerRows(p.setup.dataDir),
  };
}

/** How cost grows (bench/growth.ts), then the proxies stop; the cores cells restart the gateway. */
async function measureGrowth(p: Processes): Promise<GrowthResults> {
  const pass: ProxyUnderTest = {
    name: 'passthrough',
    origin: p.passthroughUrl,
    pid: p.passthrough.pid,
    auth: 'sk-bench-upstream',
  };
  const sy: ProxyUnderTest = {
    name: 'switchyard',
    origin: p.gatewayUrl,
    pid: p.gateway.pid,
    auth: p.setup.virtualKey,
  };
  const growth: GrowthResults = {
    tool: WRK ? 'wrk' : 'undici',
    seconds: GROWTH_SECONDS,
    ...(await measurePromptsAndConnections(pass, sy)),
    cacheHits: measureCacheHits(pass, sy),
  };
  await p.passthrough.stop();
  if (SLOW_STREAMS > 0) growth.slowStreams = await measureSlowStreams(sy);
  await p.gateway.stop(20_000);
  // The machine's cores (nproc here would say 1: this process is pinned).
  if (WRK && TASKSET && cpus().length >= 2) {
    growth.cores = [];
    for (const cores of [String(PROXY_CPU), '0,1']) {
      const gw = startGateway(p.setup, p.gatewayLog, [], cores);
      const url = await gw.ready;
      await closedLoop(makePool(url, 8), chatTarget('warm-up', url, p.setup.virtualKey), 8, WARMUP_S);
      growth.cores.push(measureCores({ ...sy, origin: url, pid: gw.pid }, cores));
      await gw.stop(20_000);
    }
  }
  return growth;
}

function writeResults(json: Record<string, unknown>): void {
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(json, withoutSamples, 2)}\n`);
  log(`wrote ${OUT} (${json['runtimeSeconds']}s)`);
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const machine = await prepareMachine();
  const procs = await startProcesses(machine);
  const paths = await measurePaths(procs);
  const gateway = await readEvidence(procs, paths);
  const growth = await measureGrowth(procs);
  const profile =
    PROFILE_S > 0
      ? await profileGateway(procs.setup, join(procs.setup.dir, 'gateway-profile.log'))
      : undefined;
  await procs.mock.stop();
  await procs.slowMock.stop();

  const notes = [...machine.notes, ...runNotes(paths, gateway)];
  const out = table(paths, notes);
  process.stdout.write(`\n${out}\n`);
  process.stdout.write(
    `\nHow cost grows (${growth.tool}, ${growth.seconds} s a cell):\n\n${growthMarkdown(growth)}\n`,
  );
  if (profile) process.stdout.write(profileText(profile));
  const components = runComponents();
  if (components) process.stdout.write(`\n${componentTable(components)}\n`);

  const run = {
    startedAt,
    git: gitCommit(),
    cores: machine.cores,
    pinned: machine.pinned,
    quietBeforeRun: machine.quiet,
  };
  writeResults(resultJson(run, paths, gateway, { profile, components, notes, table: out, growth }));
  rmSync(procs.setup.dir, { recursive: true, force: true });
}

/**
 * The component benchmarks (bench/components.ts: stream translators, router,
 * ledger, hedging, dispatch, Anthropic translation), in a process of their own
 * pinned to PROXY_CPU, after the load phases so nothing competes with them.
 */
function runComponents(): ComponentResults | null {
  log('components: stream translation, router, ledger, hedging, dispatch, anthropic translation');
  const script = join(ROOT, 'bench', 'components.ts');
  const [cmd, args] = TASKSET
    ? ['taskset', ['-c', String(PROXY_CPU), process.execPath, script, '--json']]
    : [process.execPath, [script, '--json']];
  try {
    const out = execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 20 });
    return JSON.parse(out.trim().split('\n').at(-1) ?? 'null') as ComponentResults;
  } catch (error) {
    log(`components failed: ${error instanceof Error ? error.message : String(error)}`);
    return null;
  }
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

if (process.env['SWITCHYARD_BENCH_REEXEC'] === undefined) {
  const child = spawn(
    process.execPath,
    [...GENERATOR_FLAGS, import.meta.filename, ...process.argv.slice(2)],
    {
      stdio: 'inherit',
      env: { ...process.env, SWITCHYARD_BENCH_REEXEC: '1' },
    },
  );
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  process.on('SIGINT', () => {
    killAll();
    process.exit(130);
  });
  process.on('SIGTERM', () => {
    killAll();
    process.exit(143);
  });
  main().then(
    () => {
      killAll();
    },
    (error: unknown) => {
      killAll();
      process.stderr.write(
        `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exit(1);
    },
  );
}
