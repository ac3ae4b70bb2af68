/**
 * The complexity judge, measured (part of bench/complexity.ts's report):
 * - its held-out report, with a deterministic stand-in for the judge model
 *   that answers each request's label (judge-stand-in.ts): this measures the
 *   plumbing (prompt, hash, cache, parsing, fallback, safety valve), not a
 *   model's judgement, which would need a real model; and the same with
 *   every 4th answer unparsable, to show the heuristic taking over;
 * - its cost per request: the judge prompt's estimated tokens (plus one
 *   output token) under the built-in price table, for cheap judge models;
 * - its CPU per request in-process (prompt, hash, cache; the stand-in
 *   answers at once), uncached and cached;
 * - its added latency per request through a running gateway, over the same
 *   requests routed by the heuristic alone, with the stand-in upstream
 *   answering at once and after 200 ms, uncached (first time a prompt is
 *   seen) and cached (the same prompt again).
 */
import { PriceTable } from '../src/core/price-table.ts';
import { estimatePromptTokens } from '../src/core/token-estimate.ts';
import type { ChatRequest } from '../src/core/types.ts';
import { JudgeClassifier } from '../src/routing/complexity/judge.ts';
import { judgePromptHash, judgeRequestFor } from '../src/routing/complexity/judge-prompt.ts';
import type { LabelledPrompt } from '../src/routing/complexity/labelled-set.ts';
import { type ComplexityPolicy, decideComplexity } from '../src/routing/complexity/safety-valve.ts';
import type { RouteCaller } from '../src/routing/conditions.ts';
import type { ComplexityTier } from '../src/routing/model-table.ts';
import { startTestGateway } from '../test/helpers/gateway.ts';
import { startJudgeStandIn } from './judge-stand-in.ts';

/** Cheap models a judge would be, priced from the built-in table. */
export const JUDGE_MODELS = ['gpt-4o-mini', 'gpt-5-nano'] as const;
/** The stand-in upstream's delays, in ms. */
const DELAYS = [0, 200] as const;

export interface JudgeLatency {
  /** Mean ms of a request routed by the heuristic alone (the baseline). */
  heuristicMs: number;
  /** Mean ms added over the baseline, by stand-in delay. */
  added: Array<{ upstreamMs: number; uncachedMs: number; cachedMs: number }>;
  requests: number;
}

export interface JudgeCost {
  /** Mean estimated tokens of the judge prompt over the held-out requests. */
  promptTokens: number;
  /** Mean USD per judged request, by judge model. */
  usdPerRequest: Record<string, number>;
}

const BENCH_CALLER: RouteCaller = {
  key: { id: 'bench', isMaster: false, tier: null, metadata: {}, teamId: null } as never,
  headers: {},
};

/** The tiers a judge backed by the stand-in routes the requests to (after the safety valve). */
export async function judgeRouted(
  requests: readonly ChatRequest[],
  labels: ReadonlyMap<string, ComplexityTier>,
  policy: (judge: JudgeClassifier) => ComplexityPolicy,
  options: { unparsableEvery?: number } = {},
): Promise<ComplexityTier[]> {
  let calls = 0;
  const judge = new JudgeClassifier({
    ask: async (judgeRequest) => {
      calls++;
      const rambles = options.unparsableEvery !== undefined && calls % options.unparsableEvery === 0;
      const label = labels.get(judgePromptHash(judgeRequest));
      return { text: rambles ? 'It depends.' : (label ?? 'unknown'), costMicros: null };
    },
    timeoutMs: 1500,
  });
  const routed: ComplexityTier[] = [];
  for (const request of requests) {
    await judge.prepare(request, { caller: BENCH_CALLER, signal: new AbortController().signal });
    routed.push(decideComplexity(request, null, policy(judge)).tier);
  }
  return routed;
}

export function judgeCost(requests: readonly ChatRequest[], prices = new PriceTable()): JudgeCost {
  const usdPerRequest: Record<string, number> = {};
  let tokens = 0;
  for (const request of requests) tokens += estimatePromptTokens(judgeRequestFor(request));
  for (const model of JUDGE_MODELS) {
    let micros = 0;
    for (const request of requests) {
      const prompt = estimatePromptTokens(judgeRequestFor(request));
      micros +=
        prices.costMicros(model, { prompt_tokens: prompt, completion_tokens: 1, total_tokens: prompt + 1 }) ??
        0;
    }
    usdPerRequest[model] = micros / requests.length / 1_000_000;
  }
  return { promptTokens: Math.round(tokens / requests.length), usdPerRequest };
}

/** µs of CPU per judged request in-process: prompt, hash, cache, parse (the stand-in answers at once). */
export async function judgeCpuUs(
  requests: readonly ChatRequest[],
  labels: ReadonlyMap<string, ComplexityTier>,
  policy: (judge: JudgeClassifier) => ComplexityPolicy,
): Promise<{ uncached: number; cached: number }> {
  const rounds = 20;
  let uncached = 0;
  let cached = 0;
  for (let round = 0; round < rounds + 2; round++) {
    const judge = new JudgeClassifier({
      ask: async (judgeRequest) => ({
        text: labels.get(judgePromptHash(judgeRequest)) ?? 'x',
        costMicros: 0,
      }),
      timeoutMs: 1500,
    });
    const signal = new AbortController().signal;
    for (const pass of ['uncached', 'cached'] as const) {
      const started = performance.now();
      for (const request of requests) {
        // A fresh request object each time, as each HTTP request is.
        const copy = { ...request };
        await judge.prepare(copy, { caller: BENCH_CALLER, signal });
        decideComplexity(copy, null, policy(judge));
      }
      const us = (performance.now() - started) * 1000;
      // The first two rounds warm up.
      if (round < 2) continue;
      if (pass === 'uncached') uncached += us;
      else cached += us;
    }
  }
  const per = (us: number): number => Math.round((us / (rounds * requests.length)) * 10) / 10;
  return { uncached: per(uncached), cached: per(cached) };
}

/** Through a running gateway: each request by the heuristic alone, then by the judge at each delay, twice. */
export async function judgeLatency(
  examples: ReadonlyArray<{ request: ChatRequest; tier: ComplexityTier }>,
  labels: ReadonlyMap<string, ComplexityTier>,
  warmUp: readonly LabelledPrompt[],
): Promise<JudgeLatency> {
  const standIn = await startJudgeStandIn(labels);
  const tiers = ['small', 'medium', 'large'] as const;
  const targets = tiers.map((tier) => ({ provider: 'standin', model: `answer-${tier}`, tier }));
  const models: Record<string, unknown> = {
    heuristic: { strategy: 'complexity', targets },
  };
  for (const ms of DELAYS) {
    models[`judge-${ms}ms`] = { targets: [{ provider: 'standin', model: `judge-${ms}ms` }] };
    models[`judged-${ms}ms`] = {
      strategy: 'complexity',
      complexity: { classifier: 'judge', judge: { model: `judge-${ms}ms`, timeout_ms: 1500 } },
      targets,
    };
  }
  const gw = await startTestGateway({
    config: {
      providers: { standin: { type: 'openai', base_url: standIn.baseUrl, api_key: 'sk-bench-stand-in' } },
      models,
    },
  });
  // Warm-up prompts are not labelled: their judge answers 'unknown prompt' and the heuristic decides.
  let measuring = false;
  const timed = async (model: string, request: ChatRequest): Promise<number> => {
    const started = performance.now();
    const res = await fetch(`${gw.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...request, model }),
    });
    const classifier = res.headers.get('x-switchyard-complexity-classifier');
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${model}: HTTP ${res.status}`);
    if (measuring && model.startsWith('judged') && classifier !== 'judge')
      throw new Error(`${model}: ${classifier}`);
    return performance.now() - started;
  };
  try {
    for (const e of warmUp) {
      const request = { model: '', messages: [{ role: 'user' as const, content: e.prompt }] };
      await timed('heuristic', request);
      for (const ms of DELAYS) await timed(`judged-${ms}ms`, request);
    }
    measuring = true;
    let heuristic = 0;
    const sums = DELAYS.map(() => ({ uncached: 0, cached: 0 }));
    for (const { request } of examples) {
      heuristic += await timed('heuristic', request);
      for (const [i, ms] of DELAYS.entries()) {
        sums[i]!.uncached += await timed(`judged-${ms}ms`, request);
        sums[i]!.cached += await timed(`judged-${ms}ms`, request);
      }
    }
    const n = examples.length;
    const mean = (ms: number): number => Math.round((ms / n) * 100) / 100;
    return {
      heuristicMs: mean(heuristic),
      added: DELAYS.map((ms, i) => ({
        upstreamMs: ms,
        uncachedMs: mean(sums[i]!.uncached - heuristic),
        cachedMs: mean(sums[i]!.cached - heuristic),
      })),
      requests: n,
    };
  } finally {
    await gw.close();
    await standIn.close();
  }
}
