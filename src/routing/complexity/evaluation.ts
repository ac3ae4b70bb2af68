/**
 * A classifier measured like one: the confusion matrix over a labelled set
 * and each tier's precision (of what went to the tier, the share that
 * belonged there) and recall (of what belonged there, the share that got
 * there). For a router the two errors differ: hard work sent small costs the
 * user an answer, simple work sent large costs money.
 */
import type { ComplexityTier } from '../model-table.ts';
import { TIERS } from './classifier.ts';

export type ConfusionMatrix = Record<ComplexityTier, Record<ComplexityTier, number>>;

export interface TierScores {
  precision: number;
  recall: number;
  /** Examples labelled with this tier. */
  support: number;
}

export interface ClassifierReport {
  examples: number;
  /** `confusion[labelled][predicted]`. */
  confusion: ConfusionMatrix;
  perTier: Record<ComplexityTier, TierScores>;
  accuracy: number;
  /** Labelled large, sent to a smaller tier. */
  underServed: number;
}

export function evaluateClassifier(
  labelled: ReadonlyArray<{ tier: ComplexityTier }>,
  predicted: readonly ComplexityTier[],
): ClassifierReport {
  if (labelled.length !== predicted.length) throw new Error('one prediction per labelled example');
  const confusion = emptyMatrix();
  for (let i = 0; i < labelled.length; i++) confusion[labelled[i]!.tier][predicted[i]!]++;
  const perTier = {} as Record<ComplexityTier, TierScores>;
  let correct = 0;
  for (const tier of TIERS) {
    const truePositive = confusion[tier][tier];
    correct += truePositive;
    const predictedAs = TIERS.reduce((sum, label) => sum + confusion[label][tier], 0);
    const support = TIERS.reduce((sum, guess) => sum + confusion[tier][guess], 0);
    perTier[tier] = {
      precision: predictedAs === 0 ? 1 : truePositive / predictedAs,
      recall: support === 0 ? 1 : truePositive / support,
      support,
    };
  }
  return {
    examples: labelled.length,
    confusion,
    perTier,
    accuracy: labelled.length === 0 ? 1 : correct / labelled.length,
    underServed: confusion.large.small + confusion.large.medium,
  };
}

function emptyMatrix(): ConfusionMatrix {
  return {
    small: { small: 0, medium: 0, large: 0 },
    medium: { small: 0, medium: 0, large: 0 },
    large: { small: 0, medium: 0, large: 0 },
  };
}

/** The report as text: the matrix, then precision and recall per tier. */
export function reportLines(name: string, report: ClassifierReport): string[] {
  const pct = (n: number): string => n.toFixed(2);
  const lines = [
    `${name}: ${report.examples} prompts, accuracy ${pct(report.accuracy)}, large sent lower ${report.underServed}`,
    `  labelled \\ routed    small  medium  large   precision  recall`,
  ];
  for (const tier of TIERS) {
    const row = report.confusion[tier];
    const s = report.perTier[tier];
    lines.push(
      `  ${tier.padEnd(19)}${String(row.small).padStart(6)}${String(row.medium).padStart(8)}${String(row.large).padStart(7)}${pct(s.precision).padStart(12)}${pct(s.recall).padStart(8)}`,
    );
  }
  return lines;
}
