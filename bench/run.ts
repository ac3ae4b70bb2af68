/**
 * `npm run bench`: what Switchyard adds over a bare Node proxy, measured in one run.
 *
 * Three paths to the same mock OpenAI upstream (test/helpers/mock-upstream-cli.ts):
 *   direct       load generator → mock
 *   passthrough  → bench/passthrough-proxy.ts (node:http + undici Pool: the floor) → mock
 *   switchyard   → `switchyard start` (virtual key auth, metrics, info logs, SQLite ledger) → mock
 *
 * The proxy under test runs on CPU 0; this process (the load generator) and the mock on
 * CPU 1 (taskset). Phases per path: warm-up, open-loop latency at a fixed rate, closed-loop
 * throughput (with the proxy's CPU time per request), an open-loop hold at a high rate,
 * sequential streaming TTFB. Prints one table; writes bench/results/latest.json.
 *
 * Environment (for a quick smoke run, e.g. BENCH_SECONDS=2 BENCH_STREAMS=20):
 *   BENCH_SECONDS (10)        latency and throughput phase length
 *   BENCH_WARMUP_SECONDS (2)  BENCH_HOLD_SECONDS (5)
 *   BENCH_RATE (200)          BENCH_HOLD_RATE (1000)     BENCH_CONCURRENCY (50)
 *   BENCH_ROUNDS (5)          interleaved rounds per phase (all paths take turns)
 *   BENCH_STREAMS (200)       BENCH_PROFILE (0)  seconds of --cpu-prof'd gateway load (also `--profile`)
 *   BENCH_OUT (bench/results/latest.json)
 *   BENCH_PROXY_NODE_FLAGS    extra node flags for both proxies, e.g. "--max-semi-space-size=2"
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { Pool } from 'undici';
import { type ComponentResults, componentTable } from './components.ts';
import {
  type Check,
  type ClosedLoopResult,
  closedLoop,
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
  withoutSamples,
} from './load.ts';
import {
  CLK_TCK,
  coreBusy,
  coreTimes,
  cpuCount,
  cpuTimeUs,
  killAll,
  pinSelf,
  type Started,
  startNode,
  statusKb,
  TASKSET,
} from './procs.ts';
import { type ProfileSummary, summarizeProfile } from './profile.ts';

const ROOT = resolve(import.meta.dirname, '..');

function envNum(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return n;
}

const SECONDS = envNum('BENCH_SECONDS', 10);
const WARMUP_S = envNum('BENCH_WARMUP_SECONDS', Math.min(2, Math.max(0.5, SECONDS / 5)));
const HOLD_S = envNum('BENCH_HOLD_SECONDS', Math.max(1, SECONDS / 2));
const RATE = envNum('BENCH_RATE', 200);
const HOLD_RATE = envNum('BENCH_HOLD_RATE', 1000);
const CONCURRENCY = Math.max(1, Math.round(envNum('BENCH_CONCURRENCY', 50)));
const STREAMS = Math.max(1, Math.round(envNum('BENCH_STREAMS', 200)));
const ROUNDS = Math.max(1, Math.round(envNum('BENCH_ROUNDS', 5)));
const PROFILE_S = process.argv.includes('--profile')
  ? envNum('BENCH_PROFILE', 0) || 5
  : envNum('BENCH_PROFILE', 0);
const OUT = resolve(ROOT, process.env['BENCH_OUT'] ?? 'bench/results/latest.json');
const STREAM_FRAMES = 20;
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
const PROXY_NODE_FLAGS = (process.env['BENCH_PROXY_NODE_FLAGS'] ?? SHIPPED_NODE_FLAGS.join(' '))
  .split(/\s+/)
  .filter(Boolean);

const AIMS = { addedP50Us: 600, addedP99Us: 2000, cpuRatio: 3, streamAddedUs: 500, rssMb: 120 };

// ---------------------------------------------------------------------------------------
// Requests and their checks
// ---------------------------------------------------------------------------------------

const LOREM =
  'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(
    ' ',
  );
/** `n` words; the mock echoes them back as `Echo: <words>`, one stream frame per word. */
const words = (n: number): string => Array.from({ length: n }, (_, i) => LOREM[i % LOREM.length]).join(' ');
const MODEL = 'gpt-4o-mini';
const JSON_PROMPT = words(85); // a ~1 KB chat.completion
const STREAM_PROMPT = words(STREAM_FRAMES - 1); // "Echo:" + 19 words = 20 content frames
const JSON_REPLY = `Echo: ${JSON_PROMPT}`;
const STREAM_REPLY = `Echo: ${STREAM_PROMPT}`;

const jsonBody = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: JSON_PROMPT }] });
const streamBody = JSON.stringify({
  model: MODEL,
  stream: true,
  messages: [{ role: 'user', content: STREAM_PROMPT }],
});

const checkJson: Check = (status, headers, body) => {
  if (status !== 200) return `HTTP ${status}`;
  if (!String(headers['content-type']).startsWith('application/json')) return 'not JSON';
  let obj: {
    object?: unknown;
    model?: unknown;
    choices?: { message?: { content?: unknown } }[];
    usage?: { total_tokens?: unknown };
  };
  try {
    obj = JSON.parse(body);
  } catch {
    return 'invalid JSON body';
  }
  if (obj.object !== 'chat.completion') return 'object != chat.completion';
  if (obj.model !== MODEL) return 'unexpected model';
  if (obj.choices?.[0]?.message?.content !== JSON_REPLY) return 'unexpected content';
  if (typeof obj.usage?.total_tokens !== 'number') return 'no usage';
  return undefined;
};

const checkStream: Check = (status, headers, body) => {
  if (status !== 200) return `HTTP ${status}`;
  if (!String(headers['content-type']).startsWith('text/event-stream')) return 'not SSE';
  let content = '';
  let frames = 0;
  let done = false;
  for (const event of body.split(/\r?\n\r?\n/)) {
    const data = event
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trimStart())
      .join('\n');
    if (data === '') continue;
    if (done) return 'data after [DONE]';
    if (data === '[DONE]') {
      done = true;
      continue;
    }
    let chunk: { object?: unknown; choices?: { delta?: { content?: unknown } }[] };
    try {
      chunk = JSON.parse(data);
    } catch {
      return 'invalid JSON frame';
    }
    if (chunk.object !== 'chat.completion.chunk') return 'frame is not a chunk';
    const piece = chunk.choices?.[0]?.delta?.content;
    if (typeof piece === 'string' && piece.length > 0) {
      frames++;
      content += piece;
    }
  }
  if (!done) return 'no [DONE]';
  if (frames !== STREAM_FRAMES) return `expected ${STREAM_FRAMES} content frames, got ${frames}`;
  if (content !== STREAM_REPLY) return 'unexpected streamed content';
  return undefined;
};

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

/** Children get a clean environment: no provider keys or config from the caller's shell. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of ['PATH', 'HOME', 'LANG', 'TMPDIR']) {
    const v = process.env[name];
    if (v !== undefined) env[name] = v;
  }
  return { ...env, ...extra };
}

interface GatewaySetup {
  dir: string;
  configPath: string;
  dataDir: string;
  masterKey: string;
  virtualKey: string;
  keyKind: 'virtual' | 'master';
}

function prepareGateway(mockUrl: string): GatewaySetup {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-'));
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  const masterKey = `sk-sy-master-bench${randomBytes(18).toString('base64url')}`;
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    data_dir: dataDir,
    providers: { upstream: { type: 'openai', base_url: `${mockUrl}/v1`, api_key: 'sk-bench-upstream' } },
    models: { [MODEL]: { targets: [{ provider: 'upstream', model: MODEL }] } },
  };
  const configPath = join(dir, 'switchyard.yaml');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  // A virtual key, as a real client would use (falls back to the master key).
  let virtualKey = masterKey;
  let keyKind: 'virtual' | 'master' = 'master';
  try {
    const out = execFileSync(
      process.execPath,
      [join(ROOT, 'bin/switchyard.js'), 'keys', 'create', '--name', 'bench', '--config', configPath],
      {
        cwd: dir,
        env: childEnv({ SWITCHYARD_MASTER_KEY: masterKey }),
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const created = JSON.parse(out) as { key?: unknown };
    if (typeof created.key === 'string' && created.key.length > 0) {
      virtualKey = created.key;
      keyKind = 'virtual';
    }
  } catch (error) {
    process.stderr.write(
      `bench: could not create a virtual key (${(error as Error).message}); using the master key\n`,
    );
  }
  return { dir, configPath, dataDir, masterKey, virtualKey, keyKind };
}

function startGateway(g: GatewaySetup, logFile: string, nodeFlags: string[] = []): Started {
  return startNode(
    [...PROXY_NODE_FLAGS, ...nodeFlags, join(ROOT, 'bin/switchyard.js'), 'start', '--config', g.configPath],
    {
      cpu: 0,
      cwd: g.dir,
      env: childEnv({ PORT: '0', LOG_LEVEL: 'info', SWITCHYARD_MASTER_KEY: g.masterKey }),
      stdout: openSync(logFile, 'a'),
      readyOn: /listening on (http:\/\/\S+)/,
      readyTimeoutMs: 30_000,
    },
  );
}

// ---------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------

interface Throughput extends ClosedLoopResult {
  proxyCpuUsPerReq: number | null;
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
async function waitForQuiet(maxSeconds: number): Promise<{ busyCores: number; waitedS: number }> {
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

interface PathResult {
  name: string;
  latency: OpenLoopResult;
  throughput: Throughput;
  hold: OpenLoopResult & { proxyCpuUsPerReq: number | null };
  stream: SequentialResult;
  peakRssMb: number | null;
  responseBytes: number;
  errors: Errors;
}

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

interface PathSpec {
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
  const cores: Record<string, number> = {};
  for (const r of rounds) {
    for (const [c, v] of Object.entries(r.cores)) cores[c] = (cores[c] ?? 0) + v / rounds.length;
  }
  for (const c of Object.keys(cores)) cores[c] = Math.round((cores[c] ?? 0) * 1000) / 1000;
  const wallUs = merged.seconds * 1e6;
  return {
    ...merged,
    proxyCpuUsPerReq: proxyCpu === null ? null : proxyCpu / served,
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

/**
 * Measures every path, phase by phase. The fixed-rate, throughput and streaming phases run in
 * ROUNDS interleaved rounds (direct, passthrough, switchyard, then again in rotated order), so
 * drift of a noisy machine hits all paths alike instead of whichever ran last.
 */
async function measureAll(specs: PathSpec[], mockPid: number): Promise<PathResult[]> {
  const states: PathState[] = specs.map((spec) => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${spec.auth}` };
    const json: Target = {
      name: spec.name,
      origin: spec.origin,
      path: '/v1/chat/completions',
      headers,
      body: jsonBody,
      check: checkJson,
    };
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
  ): Promise<void> => {
    log(what);
    for (let round = 0; round < ROUNDS; round++) {
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
      `closed loop c=${CONCURRENCY}: ${ROUNDS} rounds × ${SECONDS / ROUNDS}s per path`,
      async (s) => {
        const cpu0 = s.proxyPid === null ? 0 : cpuTimeUs(s.proxyPid);
        const mock0 = cpuTimeUs(mockPid);
        const self0 = process.cpuUsage();
        const cores0 = coreTimes();
        const result = await closedLoop(s.pool, s.json, CONCURRENCY, SECONDS / ROUNDS);
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
    );

    const holds = new Map<string, PathResult['hold']>();
    for (const s of states) {
      log(`${s.name}: open loop ${HOLD_RATE} rps × ${HOLD_S}s`);
      const h0 = s.proxyPid === null ? 0 : cpuTimeUs(s.proxyPid);
      const run = await openLoop(s.pool, s.json, HOLD_RATE, HOLD_S);
      const cpu = s.proxyPid === null ? null : cpuTimeUs(s.proxyPid) - h0;
      holds.set(s.name, { ...run, proxyCpuUsPerReq: cpu === null ? null : cpu / Math.max(run.sent, 1) });
    }

    const perRound = Math.max(1, Math.round(STREAMS / ROUNDS));
    await inRounds(
      `sequential streams (${STREAM_FRAMES} frames): ${ROUNDS} rounds × ${perRound} per path`,
      async (s) => {
        s.streams.push(await sequential(s.pool, s.stream, perRound, 2));
      },
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

async function profileGateway(g: GatewaySetup, logFile: string): Promise<ProfileSummary | undefined> {
  const profDir = join(g.dir, 'cpuprof');
  mkdirSync(profDir);
  const gw = startGateway(g, logFile, ['--cpu-prof', '--cpu-prof-dir', profDir]);
  let window: { fromUs: number; toUs: number } | undefined;
  try {
    const url = await gw.ready;
    const t: Target = {
      name: 'profile',
      origin: url,
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${g.virtualKey}` },
      body: jsonBody,
      check: checkJson,
    };
    const pool = makePool(url, CONCURRENCY);
    log(`profile: warm-up ${WARMUP_S}s, then c=${CONCURRENCY} × ${PROFILE_S}s under --cpu-prof`);
    await closedLoop(pool, t, 8, WARMUP_S);
    const from = Number(process.hrtime.bigint() / 1000n);
    const r = await closedLoop(pool, t, CONCURRENCY, PROFILE_S);
    window = { fromUs: from, toUs: Number(process.hrtime.bigint() / 1000n) };
    await pool.close();
    log(`profile: ${Math.round(r.rps)} rps under the profiler, ${r.errors.total} errors`);
  } finally {
    await gw.stop(20_000);
  }
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) {
    log('profile: no .cpuprofile written');
    return undefined;
  }
  // Kept for a closer look (chrome://inspect, speedscope); only the loaded window is summarised.
  const kept = join(tmpdir(), `switchyard-bench-${process.pid}.cpuprofile`);
  copyFileSync(join(profDir, file), kept);
  log(`profile: ${kept}`);
  return summarizeProfile(kept, ROOT, 15, window);
}

/** Counters from the gateway itself, proving auth, metrics, logs and the ledger were on. */
async function gatewayEvidence(url: string): Promise<{ metricsOk200: number; unauthorizedStatus: number }> {
  const res = await fetch(`${url}/metrics`);
  const text = await res.text();
  let metricsOk200 = 0;
  for (const line of text.split('\n')) {
    if (
      line.startsWith('switchyard_requests_total{') &&
      line.includes('route="/v1/chat/completions"') &&
      line.includes('status="200"')
    ) {
      metricsOk200 += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  const noKey = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: jsonBody,
  });
  await noKey.arrayBuffer();
  return { metricsOk200, unauthorizedStatus: noKey.status };
}

function countLedgerRows(dataDir: string): number | null {
  try {
    const db = new DatabaseSync(join(dataDir, 'switchyard.db'), { readOnly: true });
    const row = db.prepare('SELECT COUNT(*) AS n FROM usage_ledger').get() as { n: number } | undefined;
    db.close();
    return row ? Number(row.n) : null;
  } catch {
    return null;
  }
}

function countLogLines(file: string): number {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"msg":"request"')).length;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

const r0 = (n: number | null | undefined): string =>
  n === null || n === undefined || !Number.isFinite(n) ? '-' : String(Math.round(n));
const r1 = (n: number | null | undefined): string =>
  n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(1);
const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISS');

function table(d: PathResult, p: PathResult, s: PathResult, notes: string[]): string {
  const addP50 = (x: PathResult) => x.latency.latencyUs.p50 - d.latency.latencyUs.p50;
  const addP99 = (x: PathResult) => x.latency.latencyUs.p99 - d.latency.latencyUs.p99;
  const sAdd50 = (x: PathResult) => x.stream.ttfbUs.p50 - d.stream.ttfbUs.p50;
  const sAdd99 = (x: PathResult) => x.stream.ttfbUs.p99 - d.stream.ttfbUs.p99;
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
      `added p50 @${RATE}rps (µs)`,
      '-',
      r0(addP50(p)),
      r0(addP50(s)),
      `≤ ${AIMS.addedP50Us} ${verdict(addP50(s) <= AIMS.addedP50Us)}`,
    ],
    [
      `added p99 @${RATE}rps (µs)`,
      '-',
      r0(addP99(p)),
      r0(addP99(s)),
      `≤ ${AIMS.addedP99Us} ${verdict(addP99(s) <= AIMS.addedP99Us)}`,
    ],
    [
      `added over passthrough p50/p99 (µs)`,
      '-',
      '-',
      `${r0(s.latency.latencyUs.p50 - p.latency.latencyUs.p50)}/${r0(s.latency.latencyUs.p99 - p.latency.latencyUs.p99)}`,
      '',
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
      'stream TTFB added p50/p99 (µs)',
      '-',
      `${r0(sAdd50(p))}/${r0(sAdd99(p))}`,
      `${r0(sAdd50(s))}/${r0(sAdd99(s))}`,
      `≤ ${AIMS.streamAddedUs} (p50) ${verdict(sAdd50(s) <= AIMS.streamAddedUs)}`,
    ],
    [
      'peak RSS (MB)',
      '-',
      r1(p.peakRssMb),
      r1(s.peakRssMb),
      `< ${AIMS.rssMb} ${verdict((s.peakRssMb ?? Number.POSITIVE_INFINITY) < AIMS.rssMb)}`,
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

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const startedAt = Date.now();
  const notes: string[] = [];
  const cores = cpuCount();
  let pinned = false;
  if (!TASKSET) notes.push('NOTE: taskset not found: running unpinned (numbers are noisier).');
  else if (cores < 2) notes.push(`NOTE: only ${cores} CPU: running unpinned.`);
  else pinned = pinSelf(1);
  const cpuFor = (cpu: number): number | undefined => (pinned ? cpu : undefined);
  const quiet = await waitForQuiet(envNum('BENCH_QUIET_WAIT_SECONDS', 60));
  if (quiet.busyCores >= 0.15) {
    notes.push(
      `WARNING: the machine was busy before the run (${quiet.busyCores} cores in use by other processes): numbers are skewed.`,
    );
  }

  log(
    `node ${process.version}, ${cores} CPUs (${cpus()[0]?.model ?? '?'}), CLK_TCK ${CLK_TCK}, ` +
      (pinned ? 'pinned: proxy on CPU 0, load + mock on CPU 1' : 'unpinned'),
  );

  // The mock is not under test: small semi-spaces keep its GC pauses out of the tails too.
  const mock = startNode(
    [...GENERATOR_FLAGS, join(ROOT, 'test/helpers/mock-upstream-cli.ts'), '--port', '0'],
    {
      cpu: cpuFor(1),
      env: childEnv(),
      stdout: 'pipe',
    },
  );
  const mockPort = (JSON.parse(await mock.ready) as { port: number }).port;
  const mockUrl = `http://127.0.0.1:${mockPort}`;

  const pt = startNode(
    [...PROXY_NODE_FLAGS, join(ROOT, 'bench/passthrough-proxy.ts'), '--upstream', mockUrl],
    {
      cpu: cpuFor(0),
      env: childEnv(),
      stdout: 'pipe',
    },
  );
  const ptUrl = `http://127.0.0.1:${(JSON.parse(await pt.ready) as { port: number }).port}`;

  const g = prepareGateway(mockUrl);
  const gwLog = join(g.dir, 'gateway.log');
  const gw = startGateway(g, gwLog);
  const gwUrl = await gw.ready;
  log(
    `mock ${mockUrl} (pid ${mock.pid}), passthrough ${ptUrl} (pid ${pt.pid}), switchyard ${gwUrl} (pid ${gw.pid})`,
  );

  const [direct, pass, sy] = (await measureAll(
    [
      { name: 'direct', origin: mockUrl, auth: 'sk-bench-upstream', proxyPid: null },
      { name: 'passthrough', origin: ptUrl, auth: 'sk-bench-upstream', proxyPid: pt.pid },
      { name: 'switchyard', origin: gwUrl, auth: g.virtualKey, proxyPid: gw.pid },
    ],
    mock.pid,
  )) as [PathResult, PathResult, PathResult];

  const evidence = await gatewayEvidence(gwUrl);
  const ptRss = statusKb(pt.pid, 'VmHWM') / 1024;
  pass.peakRssMb = ptRss;
  sy.peakRssMb = statusKb(gw.pid, 'VmHWM') / 1024;
  await gw.stop(20_000);
  await pt.stop();
  const ledgerRows = countLedgerRows(g.dataDir);
  const logLines = countLogLines(gwLog);

  let profile: ProfileSummary | undefined;
  if (PROFILE_S > 0) profile = await profileGateway(g, join(g.dir, 'gateway-profile.log'));
  await mock.stop();

  const sentToGateway = sy.latency.ok + sy.throughput.ok + sy.hold.ok + sy.stream.ok;
  notes.push(
    `switchyard: auth with a ${g.keyKind} key (no key → HTTP ${evidence.unauthorizedStatus}); ` +
      `metrics counted ${evidence.metricsOk200} chat 200s; ${logLines} access-log lines; ` +
      `${ledgerRows ?? '?'} ledger rows (≥ ${sentToGateway} measured OK requests expected).`,
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
  const tput = Math.max(direct.throughput.rps, pass.throughput.rps);
  if ((pass.throughput.proxyCpuBusy ?? 1) < 0.9) {
    notes.push(
      `note: the pass-through proxy used ${r0((pass.throughput.proxyCpuBusy ?? 0) * 100)}% of CPU 0 at c=${CONCURRENCY}: ` +
        `its rps (${r0(tput)}) is bounded by the load side (CPU 1), not by the proxy.`,
    );
  }

  if (PROXY_NODE_FLAGS.length > 0) notes.push(`proxies ran with node flags: ${PROXY_NODE_FLAGS.join(' ')}`);
  const out = table(direct, pass, sy, notes);
  process.stdout.write(`\n${out}\n`);
  if (profile) {
    const fnLines = profile.functions
      .slice(0, 10)
      .map(
        (f, i) =>
          `${String(i + 1).padStart(2)}. ${f.pct.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}` +
          (f.caller ? `\n            ← ${f.caller}` : ''),
      );
    const modLines = profile.modules.map((m) => `    ${m.pct.toFixed(1).padStart(5)}%  ${m.name}`);
    process.stdout.write(
      `\nswitchyard CPU profile (self time, ${profile.sampledMs} ms busy sampled, ${PROFILE_S}s at c=${CONCURRENCY}):\n` +
        `${fnLines.join('\n')}\n  by module:\n${modLines.join('\n')}\n`,
    );
  }

  const components = runComponents();
  if (components) process.stdout.write(`\n${componentTable(components)}\n`);

  const json = {
    when: new Date(startedAt).toISOString(),
    git: gitCommit(),
    node: process.version,
    cpu: cpus()[0]?.model ?? null,
    cores,
    pinned,
    quietBeforeRun: quiet,
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
    gateway: {
      keyKind: g.keyKind,
      ...evidence,
      accessLogLines: logLines,
      ledgerRows,
      measuredOk: sentToGateway,
    },
    paths: { direct, passthrough: pass, switchyard: sy },
    profile: profile ?? null,
    components,
    notes,
    table: out,
    runtimeSeconds: Math.round((Date.now() - startedAt) / 100) / 10,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(json, withoutSamples, 2)}\n`);
  log(`wrote ${OUT} (${json.runtimeSeconds}s)`);
  rmSync(g.dir, { recursive: true, force: true });
}

/**
 * Stream translators, router and hedging (bench/components.ts), in a process of
 * their own pinned to CPU 0, after the load phases so nothing competes with them.
 */
function runComponents(): ComponentResults | null {
  log('components: stream translation, router decisions, hedging');
  const script = join(ROOT, 'bench', 'components.ts');
  const [cmd, args] = TASKSET
    ? ['taskset', ['-c', '0', process.execPath, script, '--json']]
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

/**
 * The load generator's own GC pauses land in every path's tail latency: with V8's default
 * young generation (up to 16 MB semi-spaces) a scavenge here takes 7-12 ms on a small VM.
 * Smaller semi-spaces keep them to a few ms, so `npm run bench` re-runs this file with the
 * flag once (the proxies under test keep Node's defaults).
 */
const GENERATOR_FLAGS = ['--max-semi-space-size=4'];

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
