/**
 * Component benchmarks, in one process on one core (`npm run bench` pins it):
 * - stream translation throughput: upstream SSE bytes → canonical chunks for
 *   each outbound adapter (OpenAI framing only, Anthropic events, Gemini
 *   responses), and canonical chunks → Anthropic SSE events for the inbound
 *   `/v1/messages` route; in chunks per second;
 * - routing: microseconds per `Router.decide()` with 20 targets, per strategy;
 * - ledger: microseconds per `UsageLedger.record()` with and without the
 *   kill -9 spool (what durability costs each upstream attempt);
 * - hedging: p50/p99 through a gateway against one upstream with a slow tail,
 *   with and without hedging (this part uses loopback HTTP, so it is the one
 *   number here that is not pure CPU);
 * - dispatch: the gateway's own µs and bytes per request around an adapter
 *   that answers at once (bench/dispatch.ts);
 * - inbound Anthropic: µs per request and response translated
 *   (bench/anthropic-translation.ts), and per streamed event relayed as it
 *   came vs translated through the canonical shape (bench/anthropic-relay.ts);
 * - response cache: lookup µs on a miss and a hit, and a Zipf replay's hit
 *   rate and upstream calls saved (bench/cache.ts);
 * - complexity routing: the classifiers' confusion matrices, precision and
 *   recall on the held-out labelled prompts, cost saved vs always-large, and
 *   µs per classification (bench/complexity.ts);
 * - rate limits: µs per decision in-process and with Redis (bench/limits.ts);
 * - embedding batching: µs per item through the Batcher, and per embeddings
 *   request dispatched alone vs coalesced (bench/batcher.ts);
 * - job queue: jobs per second through the SQL (SQLite) and BullMQ backends,
 *   1 and 4 workers, a no-op handler (bench/jobs.ts).
 *
 * Run alone: node bench/components.ts [--json]
 */

import { AnthropicInboundStreamEncoder, encodeEvent } from '../src/api/anthropic/anthropic-inbound-stream.ts';
import type { ChatCompletionChunk } from '../src/core/types.ts';
import { SseParser } from '../src/providers/sse.ts';
import { type AnthropicRelayBench, benchAnthropicRelay } from './anthropic-relay.ts';
import { type AnthropicTranslationBench, benchAnthropicTranslation } from './anthropic-translation.ts';
import { type BatcherBench, batcherLine, benchBatcher } from './batcher.ts';
import { benchCache, type CacheBench, cacheLines } from './cache.ts';
import { benchComplexity, type ComplexityBench, complexityLines } from './complexity.ts';
import { benchDispatch } from './dispatch.ts';
import { runHedgingBench } from './hedging.ts';
import { benchJobs, type JobsBench, jobsLine } from './jobs.ts';
import { benchLedgerSpool, type SpoolBench } from './ledger-spool.ts';
import { benchLimits, type LimitsBench, limitsLine } from './limits.ts';
import { benchRouter } from './router.ts';
import { benchAnthropicStream } from './translate-anthropic.ts';
import { benchGeminiStream } from './translate-gemini.ts';

export interface ComponentResults {
  streamChunksPerSecond: { openai: number; anthropic: number; gemini: number; anthropicInbound: number };
  routerUsPerDecide: Record<string, number>;
  routerTargets: number;
  ledger: SpoolBench;
  dispatch: Array<{ name: string; usPerOp: number; bytesPerOp: number }>;
  anthropicTranslation: AnthropicTranslationBench;
  anthropicRelay: AnthropicRelayBench;
  cache: CacheBench;
  complexity: ComplexityBench;
  limits: LimitsBench;
  batcher: BatcherBench;
  jobs: JobsBench;
  hedging: {
    withoutMs: { p50: number; p99: number };
    withMs: { p50: number; p99: number };
    upstreamCallsPerRequest: number;
    slowFraction: number;
    slowMs: number;
    hedgeDelayMs: number;
  };
}

const FRAMES = 50_000;
const READ_BYTES = 16 * 1024;

/** OpenAI's own framing: SSE parse + JSON parse per chunk (what the openai adapter does). */
function benchOpenAIStream(): number {
  const frames: string[] = [];
  for (let i = 0; i < FRAMES; i++) {
    frames.push(
      `data: {"id":"chatcmpl-b","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" mot ${i} café"},"finish_reason":null}]}\n\n`,
    );
  }
  frames.push('data: [DONE]\n\n');
  const bytes = Buffer.from(frames.join(''));
  const once = (): number => {
    const parser = new SseParser();
    let chunks = 0;
    for (let offset = 0; offset < bytes.length; offset += READ_BYTES) {
      for (const event of parser.push(bytes.subarray(offset, offset + READ_BYTES))) {
        if (event.data === '[DONE]') continue;
        const chunk = JSON.parse(event.data) as ChatCompletionChunk;
        if (chunk.choices.length > 0) chunks++;
      }
    }
    return chunks;
  };
  once();
  const started = performance.now();
  const chunks = once();
  return Math.round((chunks / (performance.now() - started)) * 1000);
}

/** Canonical chunks → Anthropic events → SSE text, as `/v1/messages` streams them. */
function benchAnthropicInbound(): number {
  const chunk = (i: number): ChatCompletionChunk => ({
    id: 'chatcmpl-b',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, delta: { content: ` mot ${i} café` }, finish_reason: null }],
  });
  const chunks = Array.from({ length: FRAMES }, (_, i) => chunk(i));
  const once = (): number => {
    const translator = new AnthropicInboundStreamEncoder({ model: 'fast' });
    let bytes = 0;
    for (const c of chunks) for (const event of translator.push(c)) bytes += encodeEvent(event).length;
    if (bytes === 0) throw new Error('no events');
    return chunks.length;
  };
  once();
  const started = performance.now();
  const n = once();
  return Math.round((n / (performance.now() - started)) * 1000);
}

export async function runComponentBenchmarks(): Promise<ComponentResults> {
  const router = benchRouter();
  const hedging = await runHedgingBench();
  const ledger = await benchLedgerSpool();
  const dispatch = await benchDispatch();
  const anthropicTranslation = benchAnthropicTranslation();
  const anthropicRelay = benchAnthropicRelay();
  const cache = await benchCache();
  const complexity = await benchComplexity();
  const limits = await benchLimits();
  const batcher = await benchBatcher();
  const jobs = await benchJobs();
  return {
    cache,
    complexity,
    limits,
    batcher,
    jobs,
    streamChunksPerSecond: {
      openai: benchOpenAIStream(),
      anthropic: benchAnthropicStream().chunksPerSecond,
      gemini: benchGeminiStream().chunksPerSecond,
      anthropicInbound: benchAnthropicInbound(),
    },
    routerUsPerDecide: Object.fromEntries(
      router.map((r) => [r.strategy, Math.round(r.usPerDecide * 100) / 100]),
    ),
    routerTargets: router[0]?.targets ?? 0,
    ledger,
    dispatch: dispatch.map((c) => ({
      name: c.name.replace(/\s+/g, ' '),
      usPerOp: round2(c.usPerOp),
      bytesPerOp: Math.round(c.bytesPerOp),
    })),
    anthropicTranslation: {
      requestUs: round2(anthropicTranslation.requestUs),
      requestCloneUs: round2(anthropicTranslation.requestCloneUs),
      responseUs: round2(anthropicTranslation.responseUs),
    },
    anthropicRelay: {
      passthroughUs: round2(anthropicRelay.passthroughUs),
      translatedUs: round2(anthropicRelay.translatedUs),
    },
    hedging: {
      withoutMs: { p50: round1(hedging.without.p50), p99: round1(hedging.without.p99) },
      withMs: { p50: round1(hedging.with.p50), p99: round1(hedging.with.p99) },
      upstreamCallsPerRequest: Math.round(hedging.upstreamCallsPerRequestWithHedging * 1000) / 1000,
      slowFraction: hedging.options.slowFraction,
      slowMs: hedging.options.slowMs,
      hedgeDelayMs: hedging.options.hedgeDelayMs,
    },
  };
}

const round1 = (n: number): number => Math.round(n * 10) / 10;
const round2 = (n: number): number => Math.round(n * 100) / 100;

export function componentTable(r: ComponentResults): string {
  const k = (n: number): string => `${Math.round(n / 1000).toLocaleString('en-US')}k`;
  const s = r.streamChunksPerSecond;
  const h = r.hedging;
  const lines = [
    'component (one core)                 result',
    `stream translation, chunks/s         openai ${k(s.openai)}, anthropic ${k(s.anthropic)}, gemini ${k(s.gemini)}, anthropic inbound ${k(s.anthropicInbound)}`,
    `router µs/decide (${r.routerTargets} targets)        ${Object.entries(r.routerUsPerDecide)
      .map(([name, us]) => `${name} ${us}`)
      .join(', ')}`,
    `ledger CPU µs/record                 ${r.ledger.usPerRecordWithoutSpool} without the kill -9 spool; with it ${r.ledger.usPerRecordWithSpool} at 1 row a turn, ${r.ledger.usPerRecordWithSpoolBusy} at 16 (spool: +${r.ledger.usSpoolCost} / +${r.ledger.usSpoolCostBusy} µs per attempt)`,
    ...r.dispatch.map(
      (c, i) =>
        `${i === 0 ? 'dispatch µs/op, bytes/op' : ''}`.padEnd(37) +
        `${c.name}: ${c.usPerOp}, ${c.bytesPerOp}`,
    ),
    `anthropic inbound µs                 request ${r.anthropicTranslation.requestUs} (validate + translate, ${r.anthropicTranslation.requestCloneUs} of it cloning the body), response ${r.anthropicTranslation.responseUs}`,
    `anthropic relay µs/event             passthrough ${r.anthropicRelay.passthroughUs}, translated round trip ${r.anthropicRelay.translatedUs}`,
    ...cacheLines(r.cache),
    ...complexityLines(r.complexity),
    limitsLine(r.limits),
    batcherLine(r.batcher),
    jobsLine(r.jobs),
    `hedging p50/p99 (ms)                 without ${h.withoutMs.p50}/${h.withoutMs.p99}, with ${h.withMs.p50}/${h.withMs.p99} (${h.upstreamCallsPerRequest} upstream calls/request; ${h.slowFraction * 100}% of calls ${h.slowMs} ms slow, hedge after ${h.hedgeDelayMs} ms)`,
  ];
  return lines.join('\n');
}

if (import.meta.main) {
  const results = await runComponentBenchmarks();
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(results)}\n`);
  else console.log(componentTable(results));
}
