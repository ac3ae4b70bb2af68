/**
 * What every complexity classifier answers, so the `complexity` strategy,
 * the safety valve and the benchmark treat the built-in heuristic, the
 * nearest-neighbour classifier and any classifier a library user brings the
 * same way.
 *
 * `classify` runs on every request, inside `Router.decide()`: synchronous, no
 * I/O. A classifier that needs a model (the judge) does its I/O in `prepare`,
 * which the server awaits (`Router.prepare()`) before deciding, and answers
 * `classify` from what it learned there.
 */
import type { ChatRequest, EmbeddingRequest } from '../../core/types.ts';
import type { RouteCaller } from '../conditions.ts';
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
  /** Who really answered, when not the classifier itself (a judge that fell back: `judge->heuristic`). */
  by?: string;
  /** Fields for the request's log line under `routing` (a judge: how it answered, its latency and cost). */
  log?: Readonly<Record<string, unknown>>;
}

/** What `prepare` is given: who asks (a judge bills and caches per key) and when to give up. */
export interface ClassifierPreparation {
  caller: RouteCaller;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

export interface ComplexityClassifier {
  /** Names the classifier in config (`complexity.classifier`), headers and logs. */
  readonly name: string;
  classify(request: ChatRequest | EmbeddingRequest, thresholds: ComplexityThresholds): ComplexityVerdict;
  /**
   * The asynchronous part, for classifiers that need I/O: awaited before
   * `classify` is called with the same request object. Never rejects for a
   * failure of its own (it falls back instead); only when `signal` aborts.
   */
  prepare?(request: ChatRequest | EmbeddingRequest, context: ClassifierPreparation): Promise<void>;
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
