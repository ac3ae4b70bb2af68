/**
 * From classifier verdicts to the tier a request is served by, erring up:
 * sending hard work to a weak model costs the user an answer, sending simple
 * work to a strong one costs cents.
 *
 * 1. Several classifiers configured: each classifies; when they disagree the
 *    largest tier wins (`raised: 'disagreement'`) and the confidence is the
 *    lowest of theirs.
 * 2. Uncertain (confidence below `min_confidence`) with a larger alternative
 *    (the other side of a nearby threshold, a runner-up vote): the larger
 *    (`raised: 'uncertain'`). An uncertain verdict never moves down.
 * 3. The caller's key tier has a floor (`floor_by_tier: { enterprise: medium }`):
 *    never below it (`raised: 'floor'`).
 */
import type { ChatRequest, EmbeddingRequest } from '../../core/types.ts';
import type { ComplexityTier } from '../model-table.ts';
import { type ComplexityClassifier, type ComplexityThresholds, tierRank } from './classifier.ts';

export interface ComplexityPolicy extends ComplexityThresholds {
  /** At least one; several vote (the largest tier wins). */
  classifiers: readonly ComplexityClassifier[];
  /** Below this confidence a verdict goes up to its larger alternative. */
  minConfidence: number;
  /** Key tier → the smallest complexity tier its requests are served by. */
  floorByKeyTier: Readonly<Record<string, ComplexityTier>>;
}

export type RaiseReason = 'disagreement' | 'uncertain' | 'floor';

export interface ComplexityDecision {
  /** The tier the request is served by. */
  tier: ComplexityTier;
  /** The smallest tier the classifiers chose, before the valve. */
  classified: ComplexityTier;
  score: number;
  confidence: number;
  /** The classifier(s) that decided, `+`-joined. */
  classifier: string;
  /** Why the tier is above the classified one, when it is (the last step that raised it). */
  raised: RaiseReason | undefined;
  /** What the classifiers add to the request's log line (a judge's outcome, latency and cost). */
  log: Readonly<Record<string, unknown>> | undefined;
}

export function decideComplexity(
  request: ChatRequest | EmbeddingRequest,
  keyTier: string | null,
  policy: ComplexityPolicy,
): ComplexityDecision {
  const classifiers = policy.classifiers;
  let verdict = classifiers[0]!.classify(request, policy);
  let name = verdict.by ?? classifiers[0]!.name;
  let log = verdict.log;
  let smallest = verdict.tier;
  let confidence = verdict.confidence;
  for (let i = 1; i < classifiers.length; i++) {
    const other = classifiers[i]!.classify(request, policy);
    name += `+${other.by ?? classifiers[i]!.name}`;
    if (other.log !== undefined) log = log === undefined ? other.log : { ...log, ...other.log };
    confidence = Math.min(confidence, other.confidence);
    if (tierRank(other.tier) < tierRank(smallest)) smallest = other.tier;
    if (tierRank(other.tier) > tierRank(verdict.tier)) verdict = other;
  }
  let tier = verdict.tier;
  let raised: RaiseReason | undefined = smallest === tier ? undefined : 'disagreement';
  if (
    confidence < policy.minConfidence &&
    verdict.alternative !== undefined &&
    tierRank(verdict.alternative) > tierRank(tier)
  ) {
    tier = verdict.alternative;
    raised = 'uncertain';
  }
  const floor = keyTier === null ? undefined : policy.floorByKeyTier[keyTier];
  if (floor !== undefined && tierRank(floor) > tierRank(tier)) {
    tier = floor;
    raised = 'floor';
  }
  return {
    tier,
    classified: smallest,
    score: verdict.score,
    confidence: Math.round(confidence * 100) / 100,
    classifier: name,
    raised,
    log,
  };
}
