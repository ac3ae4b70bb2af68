/**
 * The built-in classifier: the textual score of complexity-score.ts against
 * the model's thresholds. Its confidence is how far the score sits from the
 * nearest threshold: 0.5 on a threshold (either side is as likely), 1 at a
 * full point or more away; the alternative is the tier across that threshold.
 */
import { complexityScore, tierOf } from '../complexity-score.ts';
import type { ComplexityTier } from '../model-table.ts';
import type { ComplexityClassifier, ComplexityThresholds, ComplexityVerdict } from './classifier.ts';

export const heuristicClassifier: ComplexityClassifier = {
  name: 'heuristic',
  classify(request, thresholds): ComplexityVerdict {
    return verdictForScore(complexityScore(request), thresholds);
  },
};

export function verdictForScore(score: number, thresholds: ComplexityThresholds): ComplexityVerdict {
  const tier = tierOf(score, thresholds);
  let distance: number;
  let alternative: ComplexityTier;
  if (tier === 'small') {
    distance = thresholds.smallMax - score;
    alternative = 'medium';
  } else if (tier === 'large') {
    distance = score - thresholds.mediumMax;
    alternative = 'medium';
  } else {
    const toSmall = score - thresholds.smallMax;
    const toLarge = thresholds.mediumMax - score;
    distance = Math.min(toSmall, toLarge);
    alternative = toLarge <= toSmall ? 'large' : 'small';
  }
  return { tier, score, confidence: confidenceAt(distance), alternative };
}

/** 0.5 at a threshold, rising linearly to 1 a full point away. */
export function confidenceAt(distance: number): number {
  return Math.min(1, 0.5 + Math.max(0, distance) / 2);
}
