/**
 * A model's `complexity:` config turned into the policy the strategy runs:
 * thresholds, the classifier instances by name, the safety valve's settings.
 * Classifiers other than the built-in heuristic come from the Router's
 * options (the server supplies them: a classifier may need what routing
 * must not import, such as the cache's embedder), built at most once.
 */
import type { ComplexityConfig } from '../../config/routing-schema.ts';
import type { ComplexityClassifier } from './classifier.ts';
import { heuristicClassifier } from './heuristic-classifier.ts';
import type { ComplexityPolicy } from './safety-valve.ts';

/**
 * A classifier, a function that builds it once when a model first names it,
 * or (for a classifier configured per model, such as the judge's model and
 * timeout) an object that builds one from the model's `complexity:` config.
 */
export type ComplexityClassifierSource =
  | ComplexityClassifier
  | (() => ComplexityClassifier)
  | { forModel(modelName: string, config: ComplexityConfig): ComplexityClassifier };

const built = new WeakMap<() => ComplexityClassifier, ComplexityClassifier>();

export function resolveComplexityPolicy(
  config: ComplexityConfig,
  sources: Readonly<Record<string, ComplexityClassifierSource>>,
  modelName: string,
): ComplexityPolicy {
  const names = typeof config.classifier === 'string' ? [config.classifier] : config.classifier;
  const classifiers = names.map((name) => {
    if (name === 'heuristic' && sources[name] === undefined) return heuristicClassifier;
    const source = sources[name];
    if (source === undefined) {
      throw new Error(
        `models.${modelName}.complexity.classifier: '${name}' is not available here (the gateway provides it; a library user passes it in RouterOptions.complexityClassifiers)`,
      );
    }
    if ('forModel' in source) return source.forModel(modelName, config);
    if (typeof source !== 'function') return source;
    let classifier = built.get(source);
    if (classifier === undefined) {
      classifier = source();
      built.set(source, classifier);
    }
    return classifier;
  });
  return {
    smallMax: config.small_max,
    mediumMax: config.medium_max,
    classifiers,
    minConfidence: config.min_confidence,
    floorByKeyTier: config.floor_by_tier,
  };
}
