/**
 * Complexity routing measured like a classifier, on the held-out labelled
 * prompts (src/routing/complexity/data/heldout.jsonl; the classifiers are
 * tuned on, and nearest-neighbour votes over, dev.jsonl):
 * - per classifier: the confusion matrix (labelled × routed tier, after the
 *   safety valve at the default `min_confidence`), each tier's precision and
 *   recall, and the heuristic's raw verdict without the valve for comparison;
 * - cost saved against sending everything to the large model, under the
 *   built-in price table with one typical family: small gpt-5-nano, medium
 *   gpt-5-mini, large gpt-5. Each prompt is priced at its estimated prompt
 *   tokens and an output that depends on the work (its label: small 150,
 *   medium 600, large 2,000 tokens), the same on whichever model serves it;
 * - decision time: µs per classification (heuristic alone, nearest-neighbour
 *   alone, and the whole valve with the default heuristic), averaged over
 *   the held-out prompts;
 * - the judge (bench/complexity-judge.ts): its report with a stand-in judge
 *   model that answers the label (the plumbing, not a model's judgement),
 *   its cost per request, and its added latency through a running gateway.
 *
 * Run alone: node bench/complexity.ts [--json]
 */
import { LexicalEmbedder } from '../src/cache/semantic/lexical-embedder.ts';
import { validateConfig } from '../src/config/load.ts';
import { PriceTable } from '../src/core/price-table.ts';
import { estimatePromptTokens } from '../src/core/token-estimate.ts';
import type { ChatRequest } from '../src/core/types.ts';
import type { ComplexityClassifier } from '../src/routing/complexity/classifier.ts';
import {
  type ClassifierReport,
  evaluateClassifier,
  reportLines,
} from '../src/routing/complexity/evaluation.ts';
import { heuristicClassifier } from '../src/routing/complexity/heuristic-classifier.ts';
import { labelledRequest, readLabelledSet } from '../src/routing/complexity/labelled-set.ts';
import { NearestNeighbourClassifier } from '../src/routing/complexity/nearest-neighbour.ts';
import { type ComplexityPolicy, decideComplexity } from '../src/routing/complexity/safety-valve.ts';
import type { ComplexityTier } from '../src/routing/model-table.ts';
import {
  JUDGE_MODELS,
  type JudgeCost,
  type JudgeLatency,
  judgeCost,
  judgeCpuUs,
  judgeLatency,
  judgeRouted,
} from './complexity-judge.ts';
import { labelsByJudgePrompt } from './judge-stand-in.ts';

export const MODELS_BY_TIER: Record<ComplexityTier, string> = {
  small: 'gpt-5-nano',
  medium: 'gpt-5-mini',
  large: 'gpt-5',
};
/** Output tokens the work needs, by its label (the answer is as long on any model). */
const OUTPUT_TOKENS: Record<ComplexityTier, number> = { small: 150, medium: 600, large: 2000 };

export interface ClassifierBench {
  name: string;
  report: ClassifierReport;
  /** Share of the always-large cost saved, 0–1. */
  costSaved: number;
}

export interface ComplexityBench {
  heldout: number;
  dev: number;
  minConfidence: number;
  classifiers: ClassifierBench[];
  us: { heuristic: number; nearestNeighbour: number; decide: number };
  judge: {
    cost: JudgeCost;
    /** In-process CPU per judged request (the stand-in answers at once). */
    us: { uncached: number; cached: number };
    latency: JudgeLatency;
  };
}

/** The judge's cost-saved figures pay for the judge too, priced as this model. */
const JUDGE_PRICED_AS = JUDGE_MODELS[0];

export async function benchComplexity(): Promise<ComplexityBench> {
  const dev = readLabelledSet('dev');
  const heldout = readLabelledSet('heldout');
  const requests = heldout.map((e) => labelledRequest(e));
  const defaults = validateConfig({
    providers: { mock: { type: 'mock' } },
    models: { auto: { strategy: 'complexity', targets: [{ provider: 'mock', model: 'm', tier: 'small' }] } },
  }).models['auto']!.complexity;
  const embedder = new LexicalEmbedder();
  const nearest = new NearestNeighbourClassifier({ embed: (t) => embedder.embedNow(t), examples: dev });
  const policy = (
    classifiers: ComplexityClassifier[],
    minConfidence = defaults.min_confidence,
  ): ComplexityPolicy => ({
    smallMax: defaults.small_max,
    mediumMax: defaults.medium_max,
    classifiers,
    minConfidence,
    floorByKeyTier: {},
  });
  const runs: Array<[string, ComplexityPolicy]> = [
    ['heuristic (built-in, default)', policy([heuristicClassifier])],
    ['heuristic without the safety valve', policy([heuristicClassifier], 0)],
    ['nearest-neighbour (lexical embedder, k=7)', policy([nearest])],
    ['nearest-neighbour, min_confidence 0.6', policy([nearest], 0.6)],
    ['heuristic + nearest-neighbour (larger wins)', policy([heuristicClassifier, nearest])],
  ];
  const prices = new PriceTable();
  const classifiers = runs.map(([name, p]) => {
    const routed = requests.map((r) => decideComplexity(r, null, p).tier);
    return {
      name,
      report: evaluateClassifier(heldout, routed),
      costSaved: costSaved(requests, heldout, routed, prices),
    };
  });
  // The judge, backed by a stand-in that answers each prompt's label: what its plumbing delivers.
  const labels = labelsByJudgePrompt(heldout.map((e, i) => ({ request: requests[i]!, tier: e.tier })));
  const cost = judgeCost(requests, prices);
  const judgeSpend = cost.usdPerRequest[JUDGE_PRICED_AS]! * requests.length * 1_000_000;
  for (const [name, unparsableEvery] of [
    ['judge (stand-in answering the label; plumbing, not a model)', undefined],
    ['judge, every 4th answer unparsable (-> heuristic)', 4],
  ] as const) {
    const routed = await judgeRouted(requests, labels, (judge) => policy([judge]), { unparsableEvery });
    classifiers.push({
      name,
      report: evaluateClassifier(heldout, routed),
      costSaved: costSaved(requests, heldout, routed, prices, judgeSpend),
    });
  }
  // What a perfect classifier would save: the ceiling for the rows above.
  classifiers.push({
    name: 'perfect routing (the labels)',
    report: evaluateClassifier(
      heldout,
      heldout.map((e) => e.tier),
    ),
    costSaved: costSaved(
      requests,
      heldout,
      heldout.map((e) => e.tier),
      prices,
    ),
  });
  const thresholds = policy([heuristicClassifier]);
  return {
    heldout: heldout.length,
    dev: dev.length,
    minConfidence: defaults.min_confidence,
    classifiers,
    us: {
      heuristic: usPer(requests, (r) => heuristicClassifier.classify(r, thresholds)),
      nearestNeighbour: usPer(requests, (r) => nearest.classify(r, thresholds)),
      decide: usPer(requests, (r) => decideComplexity(r, null, thresholds)),
    },
    judge: {
      cost,
      us: await judgeCpuUs(requests, labels, (judge) => policy([judge])),
      latency: await judgeLatency(
        heldout.map((e, i) => ({ request: requests[i]!, tier: e.tier })),
        labels,
        dev.slice(0, 20),
      ),
    },
  };
}

function costSaved(
  requests: readonly ChatRequest[],
  labelled: ReadonlyArray<{ tier: ComplexityTier }>,
  routed: readonly ComplexityTier[],
  prices: PriceTable,
  /** What classifying cost in all, micro-dollars (a judge's calls). */
  classifyingMicros = 0,
): number {
  let routedCost = classifyingMicros;
  let largeCost = 0;
  requests.forEach((request, i) => {
    const usage = {
      prompt_tokens: estimatePromptTokens(request),
      completion_tokens: OUTPUT_TOKENS[labelled[i]!.tier],
      total_tokens: 0,
    };
    routedCost += prices.costMicros(MODELS_BY_TIER[routed[i]!], usage) ?? 0;
    largeCost += prices.costMicros(MODELS_BY_TIER.large, usage) ?? 0;
  });
  return largeCost === 0 ? 0 : 1 - routedCost / largeCost;
}

function usPer(requests: readonly ChatRequest[], run: (request: ChatRequest) => unknown): number {
  let sink = 0;
  for (let round = 0; round < 20; round++) for (const r of requests) if (run(r)) sink++;
  const rounds = 200;
  const started = performance.now();
  for (let round = 0; round < rounds; round++) for (const r of requests) if (run(r)) sink++;
  const us = ((performance.now() - started) * 1000) / (rounds * requests.length);
  if (sink === 0) throw new Error('nothing classified');
  return Math.round(us * 100) / 100;
}

export function complexityLines(r: ComplexityBench): string[] {
  const pct = (n: number): string => `${Math.round(n * 100)}%`;
  const lines = [
    `complexity routing, held-out ${r.heldout} prompts (tuned on ${r.dev}); min_confidence ${r.minConfidence}; cost vs always ${MODELS_BY_TIER.large} (small ${MODELS_BY_TIER.small}, medium ${MODELS_BY_TIER.medium})`,
  ];
  for (const c of r.classifiers) {
    lines.push(
      ...reportLines(c.name, c.report).map((line, i) =>
        i === 0 ? `${line}, cost saved ${pct(c.costSaved)}` : line,
      ),
    );
  }
  lines.push(
    `complexity µs/classification         heuristic ${r.us.heuristic}, nearest-neighbour ${r.us.nearestNeighbour}, heuristic through the safety valve ${r.us.decide}`,
  );
  const j = r.judge;
  const usd = (n: number): string => `$${n.toFixed(7)}`;
  const signed = (n: number): string => `${n >= 0 ? '+' : ''}${n}`;
  lines.push(
    `complexity judge cost/request         prompt ~${j.cost.promptTokens} tokens + 1 out: ${JUDGE_MODELS.map((m) => `${m} ${usd(j.cost.usdPerRequest[m]!)}`).join(', ')} (judge rows' cost saved includes ${JUDGE_PRICED_AS})`,
    `complexity judge CPU µs/request       uncached ${j.us.uncached}, cached ${j.us.cached} (in-process, stand-in answers at once)`,
    `complexity judge added ms/request     over the heuristic's ${j.latency.heuristicMs} ms through a gateway, ${j.latency.requests} requests: ${j.latency.added.map((a) => `upstream ${a.upstreamMs} ms: uncached ${signed(a.uncachedMs)}, cached ${signed(a.cachedMs)}`).join('; ')}`,
  );
  return lines;
}

if (import.meta.main) {
  const results = await benchComplexity();
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(results)}\n`);
  else console.log(complexityLines(results).join('\n'));
}
