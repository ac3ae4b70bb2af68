/**
 * A classifier by example: the request's last user turn is embedded and
 * compared (cosine) with the embedded prompts of a labelled set (by default
 * data/dev.jsonl); its k nearest vote, each with its similarity. The tier
 * with the most weight wins; the confidence is its share of the vote and the
 * alternative the runner-up. The confidence is on the heuristic's scale:
 * 0.5 when the two leading tiers tie, 1 when the vote is unanimous; the
 * safety valve moves up to the runner-up when it is larger and the vote close.
 *
 * The embedder is injected (`embed`), so routing does not depend on the
 * cache that owns the offline lexical embedder: the server supplies it
 * (src/server/complexity-classifiers.ts). With the lexical embedder it sees
 * which words a prompt uses, not tools, history or requested length: it is
 * a second opinion, best paired with the heuristic (`classifier:
 * [heuristic, nearest-neighbour]`, the larger tier wins). A scan of ~200
 * vectors of 512 floats costs about a hundred microseconds.
 */
import type { ChatRequest, EmbeddingRequest } from '../../core/types.ts';
import type { ComplexityTier } from '../model-table.ts';
import { isChatRequest } from '../request-features.ts';
import {
  type ComplexityClassifier,
  type ComplexityThresholds,
  type ComplexityVerdict,
  TIERS,
  tierRank,
} from './classifier.ts';
import { type LabelledPrompt, labelledRequest } from './labelled-set.ts';

export interface NearestNeighbourOptions {
  /** A unit-length vector for a text (synchronous: classification runs inside the routing decision). */
  embed: (text: string) => Float32Array;
  examples: readonly LabelledPrompt[];
  /** Neighbours that vote (default 7). */
  k?: number;
}

export class NearestNeighbourClassifier implements ComplexityClassifier {
  readonly name = 'nearest-neighbour';
  readonly #embed: (text: string) => Float32Array;
  readonly #vectors: Float32Array[];
  readonly #tiers: ComplexityTier[];
  readonly #k: number;

  constructor(options: NearestNeighbourOptions) {
    if (options.examples.length === 0) throw new Error('nearest-neighbour classifier: no labelled examples');
    this.#embed = options.embed;
    this.#k = Math.max(1, Math.min(options.k ?? 7, options.examples.length));
    this.#vectors = options.examples.map((e) => this.#embed(askOf(labelledRequest(e))));
    this.#tiers = options.examples.map((e) => e.tier);
  }

  classify(request: ChatRequest | EmbeddingRequest, thresholds: ComplexityThresholds): ComplexityVerdict {
    const query = this.#embed(askOf(request));
    // The k best (similarity, index), kept sorted by insertion: k is small.
    const best: Array<[number, number]> = [];
    for (let i = 0; i < this.#vectors.length; i++) {
      const similarity = dot(query, this.#vectors[i]!);
      if (best.length === this.#k && similarity <= best[best.length - 1]![0]) continue;
      let at = best.length;
      while (at > 0 && best[at - 1]![0] < similarity) at--;
      best.splice(at, 0, [similarity, i]);
      if (best.length > this.#k) best.pop();
    }
    const votes: Record<ComplexityTier, number> = { small: 0, medium: 0, large: 0 };
    let total = 0;
    for (const [similarity, index] of best) {
      // Every neighbour counts a little, so an unrelated prompt (all similarities ~0) still gets a vote.
      const weight = Math.max(similarity, 0) + 0.01;
      votes[this.#tiers[index]!] += weight;
      total += weight;
    }
    const ranked = [...TIERS].sort((a, b) => votes[b] - votes[a] || tierRank(b) - tierRank(a));
    const tier = ranked[0]!;
    const runnerUp = ranked[1]!;
    return {
      tier,
      score: scoreOf(votes, total, thresholds),
      // As the heuristic's: 0.5 for a tie between two tiers, 1 for a unanimous vote.
      confidence: Math.round((0.5 + (votes[tier] - votes[runnerUp]) / (2 * total)) * 100) / 100,
      alternative: votes[runnerUp] > 0 ? runnerUp : undefined,
    };
  }
}

/** The vote on the heuristic's 0–10 scale: each tier's share times the middle of its band. */
function scoreOf(
  votes: Record<ComplexityTier, number>,
  total: number,
  thresholds: ComplexityThresholds,
): number {
  const middle = {
    small: thresholds.smallMax / 2,
    medium: (thresholds.smallMax + thresholds.mediumMax) / 2,
    large: (thresholds.mediumMax + 10) / 2,
  };
  let score = 0;
  for (const tier of TIERS) score += (votes[tier] / total) * middle[tier];
  return Math.round(score * 10) / 10;
}

function askOf(request: ChatRequest | EmbeddingRequest): string {
  if (!isChatRequest(request)) return '';
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const message = request.messages[i]!;
    if (message.role !== 'user') continue;
    if (typeof message.content === 'string') return message.content;
    if (Array.isArray(message.content)) {
      return message.content
        .map((part) => (part.type === 'text' ? String(part['text'] ?? '') : ''))
        .join('\n');
    }
  }
  return '';
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}
