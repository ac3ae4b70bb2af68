/**
 * Embedding micro-batching overhead, in-process (no HTTP), in rounds of 1,000
 * concurrent items (as 1,000 concurrent requests would arrive), batches of
 * 100 sent as they fill:
 *
 * - Batcher: µs per item through `submit` with a run that answers at once
 *   (what batching itself costs an item), without and with an AbortSignal per
 *   item (the gateway passes each request's);
 * - embeddings dispatch: µs per request for `dispatchEmbeddings` alone (one
 *   adapter call each) against the gateway's EmbeddingBatches (one call per
 *   100 requests, each request billed its share on its own recorder), over an
 *   adapter that answers at once, with real metrics and resilience, so the
 *   numbers are the gateway's own CPU per request. Upstream time is not in
 *   them: what batching saves there is 99 calls in 100.
 *
 * Each figure is the median of several interleaved runs (the machine is shared).
 *
 * Run alone: node bench/batcher.ts [--json]
 */
import { embeddingBill } from '../src/billing/embedding-usage.ts';
import { UsageRecorder } from '../src/billing/usage-recorder.ts';
import { validateConfig } from '../src/config/load.ts';
import type { EmbeddingRequest, EmbeddingResponse } from '../src/core/types.ts';
import { type DispatchOptions, dispatchEmbeddings, newDispatchReport } from '../src/dispatch/dispatch.ts';
import { batchableText, EmbeddingBatches } from '../src/dispatch/embedding-batches.ts';
import type { UsageLedger } from '../src/ledger/usage-ledger.ts';
import { GatewayMetrics } from '../src/observability/metrics.ts';
import type { ProviderAdapter } from '../src/providers/types.ts';
import { Resilience } from '../src/resilience/resilience.ts';
import { buildModelTable, type ModelRoute } from '../src/routing/model-table.ts';
import { Router } from '../src/routing/router.ts';
import { Batcher } from '../src/util/batcher.ts';

export interface BatcherBench {
  /** µs per item through a Batcher whose run answers at once. */
  batcherUs: number;
  /** The same, each item with an AbortSignal of its own. */
  batcherSignalUs: number;
  /** µs per embeddings request dispatched alone. */
  aloneUs: number;
  /** µs per embeddings request coalesced (100 per adapter call). */
  batchedUs: number;
  /** Adapter calls per request when coalesced. */
  callsPerRequest: number;
}

const CONCURRENT = 1_000;
const MAX_BATCH = 100;
const VECTOR = Array.from({ length: 8 }, (_, i) => i / 8);

/** Answers embeddings at once from memory; counts its calls. */
class InstantEmbedder implements ProviderAdapter {
  readonly name = 'instant';
  readonly type = 'mock';
  calls = 0;
  chat(): never {
    throw new Error('not benchmarked');
  }
  streamChat(): never {
    throw new Error('not benchmarked');
  }
  embed(request: EmbeddingRequest): Promise<EmbeddingResponse> {
    this.calls++;
    const inputs = Array.isArray(request.input) ? request.input : [request.input];
    return Promise.resolve({
      object: 'list',
      data: inputs.map((_, index) => ({ object: 'embedding' as const, index, embedding: VECTOR })),
      model: request.model,
      usage: { prompt_tokens: 5 * inputs.length, total_tokens: 5 * inputs.length },
    });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

class DiscardingLedger {
  rows = 0;
  record(): void {
    this.rows++;
  }
}

/** µs per item for `rounds` rounds of CONCURRENT items started together and awaited together. */
async function timeRounds(rounds: number, round: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) await round();
  return Number(process.hrtime.bigint() - started) / 1000 / (rounds * CONCURRENT);
}

function batcherRound(withSignals: boolean): () => Promise<unknown> {
  const batcher = new Batcher<number, number>({
    maxBatch: MAX_BATCH,
    maxWaitMs: 60_000,
    maxInFlight: CONCURRENT,
    run: (items) => Promise.resolve(items),
  });
  return () => {
    const pending = new Array<Promise<number>>(CONCURRENT);
    for (let i = 0; i < CONCURRENT; i++) {
      pending[i] = batcher.submit(i, withSignals ? new AbortController().signal : undefined);
    }
    return Promise.all(pending);
  };
}

function dispatchRounds() {
  const config = validateConfig({
    providers: { instant: { type: 'mock' } },
    models: {
      embed: {
        targets: [{ provider: 'instant', model: 'e-1' }],
        batching: { enabled: true, max_batch: MAX_BATCH, max_wait_ms: 60_000, max_in_flight: CONCURRENT },
      },
    },
  });
  const provider = new InstantEmbedder();
  const models = buildModelTable(config, new Map([['instant', provider]]));
  const route = models.get('embed')!;
  const resilience = new Resilience(config, models);
  const router = new Router(models);
  const metrics = new GatewayMetrics(models.keys(), () => 0);
  const ledger = new DiscardingLedger() as unknown as UsageLedger;
  const batches = new EmbeddingBatches({ resilience, observer: router });
  let id = 0;
  const options = (r: ModelRoute): DispatchOptions => {
    const recorder = new UsageRecorder(ledger, metrics, {
      requestId: `req-${++id}`,
      keyId: 'k',
      route: '/v1/embeddings',
      modelRequested: r.name,
      stream: false,
    });
    return {
      // Each request's own, as the route's abort-on-close signal is.
      signal: new AbortController().signal,
      requestId: recorder.info.requestId,
      recorder,
      observer: router,
      resilience,
      report: newDispatchReport(),
      targets: r.targets,
    };
  };
  /** What the route does around dispatch: bill the attempt, count the request. */
  const one = async (batched: boolean, i: number): Promise<number> => {
    const request: EmbeddingRequest = { model: 'embed', input: `text number ${i} to embed` };
    const dispatch = options(route);
    const text = batched ? batchableText(route, request) : undefined;
    const { response, attempt } =
      text === undefined
        ? await dispatchEmbeddings(route, request, dispatch)
        : await batches.dispatch(route, request, text, dispatch);
    const billed = embeddingBill(response);
    attempt.ok(billed.usage, billed.source);
    dispatch.recorder.finish(200);
    return response.data.length;
  };
  const round = (batched: boolean) => () =>
    Promise.all(Array.from({ length: CONCURRENT }, (_, i) => one(batched, i)));
  return {
    alone: round(false),
    batched: round(true),
    provider,
    close: () => resilience.close(),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function benchBatcher(runs = 5): Promise<BatcherBench> {
  const plain = batcherRound(false);
  const signalled = batcherRound(true);
  const dispatch = dispatchRounds();
  const cases = [plain, signalled, dispatch.alone, dispatch.batched];
  for (const round of cases) await timeRounds(20, round);
  const samples: number[][] = cases.map(() => []);
  // Interleaved, so a neighbour's burst on the shared machine spreads over every case.
  for (let run = 0; run < runs; run++) {
    for (let i = 0; i < cases.length; i++) samples[i]!.push(await timeRounds(i < 2 ? 200 : 20, cases[i]!));
  }
  const before = dispatch.provider.calls;
  await dispatch.batched();
  const callsPerRequest = (dispatch.provider.calls - before) / CONCURRENT;
  await dispatch.close();
  const [batcherUs, batcherSignalUs, aloneUs, batchedUs] = samples.map((s) => round2(median(s)));
  return {
    batcherUs: batcherUs!,
    batcherSignalUs: batcherSignalUs!,
    aloneUs: aloneUs!,
    batchedUs: batchedUs!,
    callsPerRequest,
  };
}

export function batcherLine(r: BatcherBench): string {
  return `embedding batching µs/item           Batcher ${r.batcherUs} (no-op run), ${r.batcherSignalUs} with a signal each; embeddings dispatch ${r.aloneUs} alone, ${r.batchedUs} batched (${r.callsPerRequest} upstream calls/request; 1,000 concurrent, batches of ${MAX_BATCH})`;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

if (import.meta.main) {
  const results = await benchBatcher();
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(results)}\n`);
  else console.log(batcherLine(results));
}
