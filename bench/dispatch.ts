/**
 * Dispatch micro-benchmark: the gateway's own cost per request on the common
 * path (the first target answers, its breaker is closed, no hedging), with an
 * in-memory adapter that answers at once, so no HTTP and no upstream time is
 * in the numbers. Each operation does what a route does around dispatch: a
 * UsageRecorder (real metrics, a ledger that only keeps the row), the
 * dispatch, the attempt's ledger row, the `x-switchyard-*` headers and the
 * request metrics; a stream is read to its end.
 *
 * Cases: (a) one target with resilience (breaker closed, default config),
 * (b) the same without resilience, (c) `Router.decide` + dispatch for a
 * three-target fallback model. Reported as µs/op and bytes allocated per op
 * (heap growth plus what each GC freed, from `v8.GCProfiler`), the median of
 * several runs (the machine is shared).
 *
 * Run alone: node bench/dispatch.ts [--runs=5] [--ops=50000] [--json]
 */
import { GCProfiler } from 'node:v8';
import type { AuthenticatedKey } from '../src/auth/key-store.ts';
import { UsageRecorder } from '../src/billing/usage-recorder.ts';
import { validateConfig } from '../src/config/load.ts';
import type { ChatCompletion, ChatCompletionChunk, ChatRequest } from '../src/core/types.ts';
import {
  type DispatchOptions,
  dispatchChat,
  dispatchChatStream,
  newDispatchReport,
} from '../src/dispatch/dispatch.ts';
import type { UsageLedger } from '../src/ledger/usage-ledger.ts';
import { GatewayMetrics } from '../src/observability/metrics.ts';
import { NO_TRACING, type Tracing } from '../src/observability/tracing.ts';
import type { ProviderAdapter } from '../src/providers/types.ts';
import { Resilience } from '../src/resilience/resilience.ts';
import { buildModelTable, type ModelRoute } from '../src/routing/model-table.ts';
import { Router } from '../src/routing/router.ts';
import { dispatchHeaders } from '../src/server/routes/model-request.ts';

export interface DispatchBenchCase {
  name: string;
  /** Median over runs. */
  usPerOp: number;
  /** Median over runs. */
  bytesPerOp: number;
  runs: number[];
}

export interface DispatchBenchOptions {
  runs?: number;
  opsPerRun?: number;
  warmupOps?: number;
  /** Each op under a request span (bench/tracing.ts: on vs off); NO_TRACING (the default) is what an untraced gateway does. */
  tracing?: Tracing;
}

const USAGE = { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 };

const COMPLETION: ChatCompletion = {
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1,
  model: 'instant',
  choices: [
    { index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop', logprobs: null },
  ],
  usage: USAGE,
};

const CHUNKS: ChatCompletionChunk[] = [
  { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'instant', choices: [] },
  {
    id: 'c',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'instant',
    choices: [{ index: 0, delta: { role: 'assistant', content: 'ok' }, finish_reason: null }],
  },
  {
    id: 'c',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'instant',
    choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
  },
  { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'instant', choices: [], usage: USAGE },
];

/** Yields the canned chunks, each already resolved: the cheapest stream an adapter could return. */
class CannedStream implements AsyncIterable<ChatCompletionChunk>, AsyncIterator<ChatCompletionChunk> {
  #next = 0;
  [Symbol.asyncIterator](): AsyncIterator<ChatCompletionChunk> {
    return this;
  }
  next(): Promise<IteratorResult<ChatCompletionChunk>> {
    const chunk = CHUNKS[this.#next++];
    return Promise.resolve(chunk ? { done: false, value: chunk } : { done: true, value: undefined });
  }
  return(): Promise<IteratorResult<ChatCompletionChunk>> {
    this.#next = CHUNKS.length;
    return Promise.resolve({ done: true, value: undefined });
  }
}

/** Answers at once from memory: what is left to measure is the gateway. */
class InstantProvider implements ProviderAdapter {
  readonly name = 'instant';
  readonly type = 'mock';
  chat(): Promise<ChatCompletion> {
    return Promise.resolve(COMPLETION);
  }
  streamChat(): Promise<AsyncIterable<ChatCompletionChunk>> {
    return Promise.resolve(new CannedStream());
  }
  embed(): never {
    throw new Error('not benchmarked');
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Keeps the last row only: the database is not on a request's path (the real ledger just queues). */
class DiscardingLedger {
  rows = 0;
  record(): void {
    this.rows++;
  }
}

interface Rig {
  models: Map<string, ModelRoute>;
  resilience: Resilience;
  router: Router;
  metrics: GatewayMetrics;
  ledger: UsageLedger;
  tracing: Tracing;
}

function buildRig(tracing: Tracing = NO_TRACING): Rig {
  const config = validateConfig({
    providers: { instant: { type: 'mock' } },
    models: {
      single: { targets: [{ provider: 'instant', model: 'm-1' }] },
      fallback3: {
        strategy: 'fallback',
        targets: [
          { provider: 'instant', model: 'f-1' },
          { provider: 'instant', model: 'f-2' },
          { provider: 'instant', model: 'f-3' },
        ],
      },
    },
  });
  const models = buildModelTable(config, new Map([['instant', new InstantProvider()]]));
  return {
    models,
    resilience: new Resilience(config, models),
    router: new Router(models),
    metrics: new GatewayMetrics(models.keys(), () => 0),
    ledger: new DiscardingLedger() as unknown as UsageLedger,
    tracing,
  };
}

const REQUEST: ChatRequest = {
  model: 'single',
  messages: [{ role: 'user', content: 'Say ok.' }],
};

const WHO = {
  key: {
    id: 'k',
    name: 'k',
    tier: null,
    allowedModels: null,
    metadata: {},
    expiresAt: null,
    isMaster: false,
  } as unknown as AuthenticatedKey,
  headers: {},
};

const SIGNAL = new AbortController().signal;
const NO_HEADERS = {};
let requestNumber = 0;

type Op = () => Promise<number>;

function options(rig: Rig, route: ModelRoute, stream: boolean, withResilience: boolean): DispatchOptions {
  const recorder = new UsageRecorder(rig.ledger, rig.metrics, {
    requestId: `req-${++requestNumber}`,
    keyId: 'k',
    route: '/v1/chat/completions',
    modelRequested: route.name,
    stream,
  });
  // As the app's first hook does (NOOP_SPAN when tracing is off); ended after `finish`.
  recorder.trace = rig.tracing.startRequest('POST', '/v1/chat/completions', NO_HEADERS);
  return {
    signal: SIGNAL,
    requestId: recorder.info.requestId,
    recorder,
    observer: rig.router,
    resilience: withResilience ? rig.resilience : undefined,
    report: newDispatchReport(),
    estimatePromptTokens: () => 12,
  };
}

function chatOp(rig: Rig, route: ModelRoute, withResilience: boolean, routed: boolean): Op {
  const request = { ...REQUEST, model: route.name };
  return async () => {
    const dispatch = options(rig, route, false, withResilience);
    if (routed) dispatch.targets = rig.router.decide(route, request, WHO).candidates;
    const { completion, attempt } = await dispatchChat(route, request, dispatch);
    attempt.ok(completion.usage);
    const headers = dispatchHeaders(dispatch.report!);
    dispatch.recorder.finish(200);
    dispatch.recorder.trace.end();
    return completion.choices.length + Object.keys(headers).length;
  };
}

function streamOp(rig: Rig, route: ModelRoute, withResilience: boolean, routed: boolean): Op {
  const request = { ...REQUEST, model: route.name, stream: true };
  return async () => {
    const dispatch = options(rig, route, true, withResilience);
    if (routed) dispatch.targets = rig.router.decide(route, request, WHO).candidates;
    const start = await dispatchChatStream(route, request, dispatch);
    const headers = dispatchHeaders(dispatch.report!);
    let chunks = 1;
    let usage = start.first.usage ?? undefined;
    for (;;) {
      const next = await start.rest.next();
      if (next.done) break;
      chunks++;
      usage = next.value.usage ?? usage;
    }
    start.attempt.ok(usage);
    dispatch.recorder.finish(200);
    dispatch.recorder.trace.end();
    return chunks + Object.keys(headers).length;
  };
}

async function loop(op: Op, count: number): Promise<number> {
  let sink = 0;
  for (let i = 0; i < count; i++) sink += await op();
  return sink;
}

/** One timed run: µs per op, and bytes allocated per op (heap growth plus what each GC freed). */
async function measure(op: Op, ops: number): Promise<{ us: number; bytes: number }> {
  const profiler = new GCProfiler();
  profiler.start();
  const heapBefore = process.memoryUsage().heapUsed;
  const started = process.hrtime.bigint();
  const sink = await loop(op, ops);
  const ns = Number(process.hrtime.bigint() - started);
  const heapAfter = process.memoryUsage().heapUsed;
  const gcs = profiler.stop()?.statistics ?? [];
  let freed = 0;
  for (const gc of gcs)
    freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
  if (sink === 0) throw new Error('unreachable: no operation did anything');
  return { us: ns / ops / 1000, bytes: (heapAfter - heapBefore + freed) / ops };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function benchDispatch(options: DispatchBenchOptions = {}): Promise<DispatchBenchCase[]> {
  const runs = options.runs ?? 5;
  const ops = options.opsPerRun ?? 50_000;
  const warmup = options.warmupOps ?? 20_000;
  const rig = buildRig(options.tracing);
  const single = rig.models.get('single')!;
  const fallback = rig.models.get('fallback3')!;
  const cases: Array<[string, Op]> = [
    ['chat      (a) 1 target, resilience', chatOp(rig, single, true, false)],
    ['chat      (b) 1 target, no resilience', chatOp(rig, single, false, false)],
    ['chat      (c) decide + 3-target fallback', chatOp(rig, fallback, true, true)],
    ['stream    (a) 1 target, resilience', streamOp(rig, single, true, false)],
    ['stream    (b) 1 target, no resilience', streamOp(rig, single, false, false)],
    ['stream    (c) decide + 3-target fallback', streamOp(rig, fallback, true, true)],
  ];
  for (const [, op] of cases) await loop(op, warmup);
  const samples = cases.map(() => ({ us: [] as number[], bytes: [] as number[] }));
  // Interleaved, so a neighbour's burst on the shared machine spreads over every case.
  for (let run = 0; run < runs; run++) {
    for (let i = 0; i < cases.length; i++) {
      const { us, bytes } = await measure(cases[i]![1], ops);
      samples[i]!.us.push(us);
      samples[i]!.bytes.push(bytes);
    }
  }
  await rig.resilience.close();
  return cases.map(([name], i) => ({
    name,
    usPerOp: median(samples[i]!.us),
    bytesPerOp: median(samples[i]!.bytes),
    runs: samples[i]!.us,
  }));
}

function flag(name: string): number | undefined {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? Number(arg.slice(name.length + 3)) : undefined;
}

if (import.meta.main) {
  const runs = flag('runs');
  const opsPerRun = flag('ops');
  const results = await benchDispatch({
    ...(runs !== undefined ? { runs } : {}),
    ...(opsPerRun !== undefined ? { opsPerRun } : {}),
  });
  if (process.argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(results)}\n`);
  } else {
    console.log('case                                          µs/op   bytes/op   (runs, µs/op)');
    for (const r of results) {
      console.log(
        `${r.name.padEnd(44)} ${r.usPerOp.toFixed(2).padStart(7)} ${Math.round(r.bytesPerOp).toString().padStart(10)}   ${r.runs.map((us) => us.toFixed(2)).join(' ')}`,
      );
    }
  }
}
