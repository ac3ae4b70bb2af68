/**
 * The complexity classifiers the gateway offers beyond the built-in
 * heuristic, wired here because they need parts of higher layers than
 * routing: `nearest-neighbour` embeds with the cache's offline lexical
 * embedder and votes over the labelled development set shipped with the
 * package. Built lazily, once, when a model's config first names it.
 */
import { LexicalEmbedder } from '../cache/semantic/lexical-embedder.ts';
import { readLabelledSet } from '../routing/complexity/labelled-set.ts';
import { NearestNeighbourClassifier } from '../routing/complexity/nearest-neighbour.ts';
import type { ComplexityClassifierSource } from '../routing/complexity/policy.ts';

export function gatewayComplexityClassifiers(): Record<string, ComplexityClassifierSource> {
  return {
    'nearest-neighbour': () => {
      const embedder = new LexicalEmbedder();
      return new NearestNeighbourClassifier({
        embed: (text) => embedder.embedNow(text),
        examples: readLabelledSet('dev'),
      });
    },
  };
}
