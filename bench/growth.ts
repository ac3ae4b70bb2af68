/**
 * How the gateway's cost grows, measured beside the pass-through in the same
 * run (`npm run bench`, after the side-by-side phases; tables in the README):
 *
 * - prompt size: 1 KB, 32 KB and 256 KB user messages (JSON work grows with
 *   the body): CPU per request at c=50 (wrk) and the latency added at a fixed
 *   100 requests/s;
 * - connections: wrk at c = 10, 50, 200 and 1,000: throughput, latency, CPU;
 * - slow streams: 5,000 streams held open at once through the gateway (an
 *   upstream sending a frame every 500 ms): errors, and RSS per open stream;
 * - cores: one gateway process pinned to one core, then given both;
 * - cache hits: an exact hit from process memory against the pass-through
 *   relaying the same answer, CPU per request, interleaved rounds.
 *
 * Every cell is short (BENCH_GROWTH_SECONDS, 3 s): these are shapes, not the
 * headline numbers of the side-by-side table.
 */
import type { Pool } from 'undici';
import { chatTarget, checkStream, MODEL } from './chat-workload.ts';
import { CACHED_MODEL, SLOW_MODEL } from './gateway-process.ts';
import { Errors, makePool, openLoop, type Target } from './load.ts';
import { cpuTimeUs, statusKb } from './procs.ts';
import { log } from './settings.ts';
import { WRK, wrkClosedLoop } from './wrk.ts';

export const GROWTH_SECONDS = Number(process.env['BENCH_GROWTH_SECONDS'] ?? 3);
export const SLOW_STREAMS = Number(process.env['BENCH_SLOW_STREAMS'] ?? 5000);

export interface ProxyUnderTest {
  name: 'passthrough' | 'switchyard';
  origin: string;
  pid: number;
  auth: string;
}

export interface LoadCell {
  rps: number;
  p50Us: number;
  p99Us: number;
  cpuUsPerReq: number;
  errors: number;
}

export interface PromptCell {
  promptKb: number;
  passthrough: LoadCell & { fixedRateP50Us: number };
  switchyard: LoadCell & { fixedRateP50Us: number };
}

export interface GrowthResults {
  tool: 'wrk' | 'undici';
  seconds: number;
  prompts: PromptCell[];
  connections: { connections: number; passthrough: LoadCell; switchyard: LoadCell }[];
  slowStreams?: SlowStreams;
  cores?: { cores: string; rps: number; cpuUsPerReq: number; p50Us: number }[];
  /** Interleaved rounds: the pass-through relaying an answer vs the gateway answering it from its cache. */
  cacheHits?: { passthrough: LoadCell; switchyardHit: LoadCell }[];
}

export interface SlowStreams {
  streams: number;
  ok: number;
  errors: Record<string, number>;
  idleRssMb: number;
  peakRssMb: number;
  rssPerStreamKb: number;
  heldSeconds: number;
}

const filler = (bytes: number): string =>
  'lorem ipsum dolor sit amet '.repeat(Math.ceil(bytes / 27)).slice(0, bytes);

function promptTarget(proxy: ProxyUnderTest, promptBytes: number, model = MODEL): Target {
  return chatTarget(
    proxy.name,
    proxy.origin,
    proxy.auth,
    JSON.stringify({
      model,
      messages: [
        { role: 'system', content: 'You are a helpful assistant.' },
        { role: 'user', content: filler(promptBytes) },
      ],
      max_tokens: 64,
    }),
    (status) => (status === 200 ? undefined : `HTTP ${status}`),
  );
}

/** wrk closed loop with the proxy's CPU time per request. */
function loadCell(proxy: ProxyUnderTest, t: Target, connections: number): LoadCell {
  const cpu0 = cpuTimeUs(proxy.pid);
  const r = wrkClosedLoop(t, connections, GROWTH_SECONDS);
  const cpu = cpuTimeUs(proxy.pid) - cpu0;
  return {
    rps: Math.round(r.rps),
    p50Us: Math.round(r.latencyUs.p50),
    p99Us: Math.round(r.latencyUs.p99),
    cpuUsPerReq: Math.round((cpu / Math.max(1, r.ok + r.errors.total)) * 10) / 10,
    errors: r.errors.total,
  };
}

async function fixedRateP50(pool: Pool, t: Target): Promise<number> {
  const r = await openLoop(pool, t, 100, GROWTH_SECONDS);
  return Math.round(r.latencyUs.p50);
}

export async function measurePromptsAndConnections(
  pass: ProxyUnderTest,
  sy: ProxyUnderTest,
): Promise<Pick<GrowthResults, 'prompts' | 'connections'>> {
  const prompts: PromptCell[] = [];
  const connections: GrowthResults['connections'] = [];
  if (!WRK) {
    log('growth: wrk not installed, prompt-size and connection tables skipped');
    return { prompts, connections };
  }
  const pools = { passthrough: makePool(pass.origin, 64), switchyard: makePool(sy.origin, 64) };
  try {
    for (const kb of [1, 32, 256]) {
      log(`growth: ${kb} KB prompts`);
      const cell = {} as PromptCell;
      cell.promptKb = kb;
      for (const proxy of [pass, sy]) {
        const t = promptTarget(proxy, kb * 1024);
        const fixed = await fixedRateP50(pools[proxy.name], t);
        cell[proxy.name] = { ...loadCell(proxy, t, 50), fixedRateP50Us: fixed };
      }
      prompts.push(cell);
    }
    for (const c of [10, 50, 200, 1000]) {
      log(`growth: c=${c}`);
      connections.push({
        connections: c,
        passthrough: loadCell(pass, promptTarget(pass, 100), c),
        switchyard: loadCell(sy, promptTarget(sy, 100), c),
      });
    }
  } finally {
    await pools.passthrough.close();
    await pools.switchyard.close();
  }
  return { prompts, connections };
}

/**
 * An exact cache hit against the bare pass-through relaying the same answer
 * (c=50, 100-byte prompt, every gateway request after the first a hit from
 * process memory): interleaved rounds, the CPU per request of each.
 */
export function measureCacheHits(
  pass: ProxyUnderTest,
  sy: ProxyUnderTest,
  rounds = 3,
): NonNullable<GrowthResults['cacheHits']> {
  if (!WRK) return [];
  const cells: NonNullable<GrowthResults['cacheHits']> = [];
  for (let round = 1; round <= rounds; round++) {
    log(`growth: cache hits vs pass-through, round ${round}/${rounds}`);
    cells.push({
      passthrough: loadCell(pass, promptTarget(pass, 100), 50),
      switchyardHit: loadCell(sy, promptTarget(sy, 100, CACHED_MODEL), 50),
    });
  }
  return cells;
}

/**
 * SLOW_STREAMS streams opened together through the gateway to an upstream
 * that sends a frame every 500 ms (~11 s a stream), all held to the end.
 */
export async function measureSlowStreams(sy: ProxyUnderTest): Promise<SlowStreams> {
  log(`growth: ${SLOW_STREAMS} concurrent slow streams`);
  const idleRssMb = statusKb(sy.pid, 'VmRSS') / 1024;
  let peakKb = statusKb(sy.pid, 'VmRSS');
  const sampler = setInterval(() => {
    peakKb = Math.max(peakKb, statusKb(sy.pid, 'VmRSS'));
  }, 100);
  const pool = makePool(sy.origin, SLOW_STREAMS);
  const errors = new Errors();
  let ok = 0;
  const started = performance.now();
  const body = JSON.stringify({
    model: SLOW_MODEL,
    stream: true,
    messages: [{ role: 'user', content: 'Say this is a benchmark test, in one short paragraph.' }],
  });
  try {
    await Promise.all(
      Array.from({ length: SLOW_STREAMS }, async () => {
        try {
          const res = await pool.request({
            method: 'POST',
            path: '/v1/chat/completions',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${sy.auth}` },
            body,
            headersTimeout: 60_000,
            bodyTimeout: 60_000,
          });
          const text = await res.body.text();
          const problem = checkStream(res.statusCode, res.headers, text);
          if (problem === undefined) ok++;
          else errors.add(problem);
        } catch (error) {
          errors.add((error as { code?: string }).code ?? 'error');
        }
      }),
    );
  } finally {
    clearInterval(sampler);
    await pool.close();
  }
  const peakRssMb = peakKb / 1024;
  return {
    streams: SLOW_STREAMS,
    ok,
    errors: errors.toJSON().byReason,
    idleRssMb: Math.round(idleRssMb),
    peakRssMb: Math.round(peakRssMb),
    rssPerStreamKb: Math.round(((peakRssMb - idleRssMb) * 1024) / SLOW_STREAMS),
    heldSeconds: Math.round((performance.now() - started) / 100) / 10,
  };
}

/** One gateway process pinned to `cores` (restarted per setting by the caller): wrk c=50. */
export function measureCores(
  sy: ProxyUnderTest,
  cores: string,
): { cores: string; rps: number; cpuUsPerReq: number; p50Us: number } {
  log(`growth: gateway on CPU ${cores}`);
  const cell = loadCell(sy, promptTarget(sy, 100), 50);
  return { cores, rps: cell.rps, cpuUsPerReq: cell.cpuUsPerReq, p50Us: cell.p50Us };
}

/** The README's growth tables, as Markdown. */
export function growthMarkdown(g: GrowthResults): string {
  const out: string[] = [];
  if (g.prompts.length > 0) {
    out.push(
      '| prompt | pass-through CPU µs/req | switchyard CPU µs/req | ratio | added p50 @100 rps (µs) | switchyard rps @c=50 |',
    );
    out.push('|---|--:|--:|--:|--:|--:|');
    for (const p of g.prompts) {
      out.push(
        `| ${p.promptKb} KB | ${p.passthrough.cpuUsPerReq} | ${p.switchyard.cpuUsPerReq} | ${(p.switchyard.cpuUsPerReq / p.passthrough.cpuUsPerReq).toFixed(2)}× | ${p.switchyard.fixedRateP50Us - p.passthrough.fixedRateP50Us} | ${p.switchyard.rps} |`,
      );
    }
    out.push('');
    out.push(
      '| connections | pass-through rps | switchyard rps | pass-through p50/p99 (ms) | switchyard p50/p99 (ms) | CPU µs/req pt / sy | errors |',
    );
    out.push('|--:|--:|--:|--:|--:|--:|--:|');
    const ms = (us: number): string => (us / 1000).toFixed(2);
    for (const c of g.connections) {
      out.push(
        `| ${c.connections} | ${c.passthrough.rps} | ${c.switchyard.rps} | ${ms(c.passthrough.p50Us)}/${ms(c.passthrough.p99Us)} | ${ms(c.switchyard.p50Us)}/${ms(c.switchyard.p99Us)} | ${c.passthrough.cpuUsPerReq} / ${c.switchyard.cpuUsPerReq} | ${c.passthrough.errors}/${c.switchyard.errors} |`,
      );
    }
    out.push('');
  }
  if (g.cacheHits && g.cacheHits.length > 0) {
    out.push(
      '| round | pass-through relay CPU µs/req | switchyard exact hit CPU µs/req | hit ÷ relay | rps pt / hit |',
    );
    out.push('|--:|--:|--:|--:|--:|');
    g.cacheHits.forEach((c, i) => {
      out.push(
        `| ${i + 1} | ${c.passthrough.cpuUsPerReq} | ${c.switchyardHit.cpuUsPerReq} | ${(c.switchyardHit.cpuUsPerReq / c.passthrough.cpuUsPerReq).toFixed(2)}× | ${c.passthrough.rps} / ${c.switchyardHit.rps} |`,
      );
    });
    out.push('');
  }
  if (g.slowStreams) {
    const s = g.slowStreams;
    out.push(
      `slow streams: ${s.ok}/${s.streams} held to the end (${s.heldSeconds} s), errors ${JSON.stringify(s.errors)}; RSS ${s.idleRssMb} MB before, ${s.peakRssMb} MB peak: ${s.rssPerStreamKb} KB per open stream`,
    );
    out.push('');
  }
  if (g.cores && g.cores.length > 0) {
    out.push('| cores given to the gateway | rps @c=50 | CPU µs/req | p50 (ms) |');
    out.push('|---|--:|--:|--:|');
    for (const c of g.cores)
      out.push(`| ${c.cores} | ${c.rps} | ${c.cpuUsPerReq} | ${(c.p50Us / 1000).toFixed(2)} |`);
  }
  return out.join('\n');
}
