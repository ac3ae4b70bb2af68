/**
 * Hedging benchmark: p50/p99 of chat completions through the gateway against
 * one upstream with a slow tail (most answers fast, a few very slow before the
 * first byte), with and without hedging.
 *
 * The upstream is the test mock; each request (hedges included) draws its own
 * first-byte delay from a seeded distribution, as independent replicas would.
 * Two provider entries point at the same upstream, so the hedge has a second
 * candidate, like two deployments of one model.
 *
 * Run alone: node bench/hedging.ts   (prints JSON)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { validateConfig } from '../src/config/load.ts';
import { Gateway } from '../src/server/gateway.ts';
import { type MockBehaviour, startMockUpstream } from '../test/helpers/mock-upstream.ts';
import { type Percentiles, percentiles } from './load.ts';

export interface HedgingBenchOptions {
  /** Requests per run. @default 400 */
  requests?: number;
  /** Requests in flight at once. @default 8 */
  concurrency?: number;
  /** Share of upstream calls that are slow. @default 0.05 */
  slowFraction?: number;
  /** First-byte delay of a slow call. @default 400 */
  slowMs?: number;
  /** First-byte delay of a normal call. @default 10 */
  fastMs?: number;
  /** Hedge after this long. @default 40 */
  hedgeDelayMs?: number;
  seed?: number;
}

export interface HedgingBenchResult {
  options: Required<HedgingBenchOptions>;
  /** Client-side latency in ms. */
  without: Percentiles;
  with: Percentiles;
  /** Upstream calls per client request with hedging (its cost). */
  upstreamCallsPerRequestWithHedging: number;
}

/** Deterministic [0, 1) sequence (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runHedgingBench(input: HedgingBenchOptions = {}): Promise<HedgingBenchResult> {
  const options: Required<HedgingBenchOptions> = {
    requests: 400,
    concurrency: 8,
    slowFraction: 0.05,
    slowMs: 400,
    fastMs: 10,
    hedgeDelayMs: 40,
    seed: 7,
    ...input,
  };
  const upstream = await startMockUpstream({ record: false });
  const apiKey = `sk-bench-${randomBytes(8).toString('hex')}`;
  const masterKey = `sk-sy-bench-${randomBytes(12).toString('hex')}`;
  const provider = { type: 'openai', base_url: upstream.baseUrl, api_key: apiKey };
  const targets = [
    { provider: 'replica1', model: 'gpt-4o-mini' },
    { provider: 'replica2', model: 'gpt-4o-mini' },
  ];
  const config = validateConfig({
    master_key: masterKey,
    data_dir: mkdtempSync(join(tmpdir(), 'switchyard-bench-hedging-')),
    logging: { level: 'silent' },
    providers: { replica1: provider, replica2: provider },
    models: {
      plain: { targets },
      hedged: { targets, hedging: { enabled: true, delay_ms: options.hedgeDelayMs } },
    },
  });
  const gateway = await Gateway.create({ config, logger: pino({ level: 'silent' }) });
  const { port } = await gateway.listen('127.0.0.1', 0);
  const url = `http://127.0.0.1:${port}/v1/chat/completions`;
  const random = seeded(options.seed);
  const draw = (): MockBehaviour => ({
    kind: 'slowFirstByte',
    ms: random() < options.slowFraction ? options.slowMs : options.fastMs,
  });

  const run = async (model: string): Promise<{ latencies: number[]; upstreamCalls: number }> => {
    upstream.reset();
    let upstreamCalls = 0;
    // Every upstream call (hedges too) draws its own delay.
    upstream.setDefault(undefined);
    const latencies: number[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < options.requests) {
        next++;
        // Enough behaviours for the request and a possible hedge; leftovers serve later requests.
        upstream.enqueue(draw(), draw());
        const started = performance.now();
        const res = await fetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${masterKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model, messages: [{ role: 'user', content: 'bench' }] }),
        });
        await res.arrayBuffer();
        latencies.push(performance.now() - started);
        upstreamCalls += Number(res.headers.get('x-switchyard-attempts') ?? '1');
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    return { latencies, upstreamCalls };
  };

  try {
    await run('plain'); // warm-up: connections, JIT
    const plain = await run('plain');
    const hedged = await run('hedged');
    return {
      options,
      without: percentiles(plain.latencies),
      with: percentiles(hedged.latencies),
      upstreamCallsPerRequestWithHedging: hedged.upstreamCalls / options.requests,
    };
  } finally {
    await gateway.close();
    await upstream.close();
  }
}

if (import.meta.main) {
  const result = await runHedgingBench();
  const round = (p: Percentiles) => ({ p50: Math.round(p.p50 * 10) / 10, p99: Math.round(p.p99 * 10) / 10 });
  console.log(
    JSON.stringify({ ...result, without: round(result.without), with: round(result.with) }, null, 2),
  );
}
