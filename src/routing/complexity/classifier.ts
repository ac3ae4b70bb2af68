/**
 * What every complexity classifier answers, so the `complexity` strategy,
 * the safety valve and the benchmark treat the built-in heuristic, the
 * nearest-neighbour classifier and any classifier a library user brings the
 * same way.
 *
 * `classify` runs on every request, inside `Router.decide()`: synchronous, no
 * I/O. A classifier that needs a model (a judge) must answer from what it
 * already knows and learn in the background.
 */
import type { ChatRequest, EmbeddingRequest } from '../../core/types.ts';
import type { ComplexityTier } from '../model-table.ts';

export interface ComplexityVerdict {
  tier: ComplexityTier;
  /** How demanding the request looks, 0–10 (the heuristic's score; other classifiers map onto it). */
  score: number;
  /** How sure the classifier is of `tier`, 0–1. */
  confidence: number;
  /**
   * The tier it would pick if not `tier` (the other side of the nearest
   * threshold, the runner-up of a vote); the safety valve moves up to it
   * when the classification is uncertain and it is the larger.
   */
  alternative: ComplexityTier | undefined;
}

export interface ComplexityClassifier {
  /** Names the classifier in config (`complexity.classifier`), headers and logs. */
  readonly name: string;
  classify(request: ChatRequest | EmbeddingRequest, thresholds: ComplexityThresholds): ComplexityVerdict;
}

export interface ComplexityThresholds {
  smallMax: number;
  mediumMax: number;
}

export const TIERS: readonly ComplexityTier[] = ['small', 'medium', 'large'];

export function tierRank(tier: ComplexityTier): number {
  return tier === 'small' ? 0 : tier === 'medium' ? 1 : 2;
}

export function largerTier(a: ComplexityTier, b: ComplexityTier): ComplexityTier {
  return tierRank(a) >= tierRank(b) ? a : b;
}
