/**
 * The complexity classifiers the gateway offers beyond the built-in
 * heuristic, wired here because they need parts of higher layers than
 * routing:
 * - `nearest-neighbour` embeds with the cache's offline lexical embedder and
 *   votes over the labelled development set shipped with the package. Built
 *   lazily, once, when a model's config first names it.
 * - `judge` asks the chat model a model's `complexity.judge` names, through
 *   the gateway's own pipeline (complexity-judge.ts). One judge (and so one
 *   cache) per judge configuration, shared by the models that use it.
 */
import { LexicalEmbedder } from '../cache/semantic/lexical-embedder.ts';
import { JudgeClassifier } from '../routing/complexity/judge.ts';
import { readLabelledSet } from '../routing/complexity/labelled-set.ts';
import { NearestNeighbourClassifier } from '../routing/complexity/nearest-neighbour.ts';
import type { ComplexityClassifierSource } from '../routing/complexity/policy.ts';
import { type JudgeContext, servedJudge } from './complexity-judge.ts';

/** `judgeContext` (read at request time) enables `judge`; without it only the offline classifiers exist. */
export function gatewayComplexityClassifiers(
  judgeContext?: () => JudgeContext,
): Record<string, ComplexityClassifierSource> {
  const sources: Record<string, ComplexityClassifierSource> = {
    'nearest-neighbour': () => {
      const embedder = new LexicalEmbedder();
      return new NearestNeighbourClassifier({
        embed: (text) => embedder.embedNow(text),
        examples: readLabelledSet('dev'),
      });
    },
  };
  if (judgeContext !== undefined) {
    const judges = new Map<string, JudgeClassifier>();
    sources['judge'] = {
      forModel(modelName, config) {
        const judge = config.judge;
        // The schema requires `judge:` whenever the classifier list names it.
        if (judge === undefined) throw new Error(`models.${modelName}.complexity.judge: missing`);
        const id = `${judge.model}|${judge.timeout_ms}|${judge.cache_ttl_s}|${judge.cache_entries}`;
        let classifier = judges.get(id);
        if (classifier === undefined) {
          classifier = new JudgeClassifier({
            ask: servedJudge(judgeContext, judge.model),
            timeoutMs: judge.timeout_ms,
            cacheEntries: judge.cache_entries,
            cacheTtlMs: judge.cache_ttl_s * 1000,
          });
          judges.set(id, classifier);
        }
        return classifier;
      },
    };
  }
  return sources;
}
