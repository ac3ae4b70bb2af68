/**
 * The semantic tier: a prompt worded differently from one answered before,
 * but near enough (cosine similarity at or above the model's threshold, in
 * the same partition), is served that earlier answer.
 *
 * It holds no answers itself: the index maps a prompt's vector to the exact
 * cache key of its answer, which the exact tiers hold (and expire, and
 * invalidate). So an answer is stored once, every tier's bounds and TTLs
 * apply to it, and an index entry whose answer is gone is a miss (and is
 * forgotten), never a wrong answer.
 *
 * With a share (Redis), every prompt remembered by any instance reaches every
 * instance's index: published on a stream each instance reads, from its start
 * on joining.
 */
import type { CacheFilter, CacheKey } from '../cache-store.ts';
import { cacheKeyString } from '../cache-store.ts';
import type { Embedder } from './embedder.ts';
import type { SemanticPrompt } from './semantic-prompt.ts';
import { type NearestPrompt, VectorIndex } from './vector-index.ts';

/** A remembered prompt as instances share it. */
export interface SharedPrompt {
  key: CacheKey;
  /** The full partition: the embedder's name and the request's partition hash. */
  partition: string;
  vector: Float32Array;
  expiresAt: number;
}

/** Carries remembered prompts between instances. */
export interface SemanticShare {
  publish(prompt: SharedPrompt): Promise<void>;
  /** Delivers every prompt any instance published (earlier ones first), until `close`. */
  start(onPrompt: (prompt: SharedPrompt) => void): void;
  close(): Promise<void>;
}

export interface SemanticCacheOptions {
  /** Most prompts held in the index (each embedder's vector: 2-6 KB). @default 50_000 */
  maxEntries?: number;
  share?: SemanticShare | undefined;
  clock?: () => number;
  onError?: (what: 'embed' | 'share', error: unknown) => void;
}

/** A query's embedding, kept so the request that missed remembers its prompt without embedding it again. */
export interface EmbeddedPrompt {
  readonly embedder: Embedder;
  readonly partition: string;
  readonly vector: Float32Array;
}

export class SemanticCache {
  readonly #index: VectorIndex;
  readonly #share: SemanticShare | undefined;
  readonly #clock: () => number;
  readonly #onError: (what: 'embed' | 'share', error: unknown) => void;
  readonly stats = { lookups: 0, hits: 0, errors: 0 };

  constructor(options: SemanticCacheOptions = {}) {
    this.#index = new VectorIndex({ maxEntries: options.maxEntries ?? 50_000 });
    this.#share = options.share;
    this.#clock = options.clock ?? Date.now;
    this.#onError = options.onError ?? (() => undefined);
    this.#share?.start((shared) => this.#index.add(shared));
  }

  get size(): number {
    return this.#index.size;
  }

  /** Embeds the prompt; undefined when the embedder fails (the request goes on as a miss). */
  async embed(
    embedder: Embedder,
    prompt: SemanticPrompt,
    signal?: AbortSignal,
  ): Promise<EmbeddedPrompt | undefined> {
    try {
      const vector = await embedder.embed(prompt.text, signal);
      return { embedder, partition: `${embedder.name}\n${prompt.partition}`, vector };
    } catch (error) {
      this.stats.errors++;
      if (!signal?.aborted) this.#onError('embed', error);
      return undefined;
    }
  }

  /** The nearest remembered prompt at or above `threshold`, if any. */
  nearest(query: EmbeddedPrompt, threshold: number): NearestPrompt | undefined {
    this.stats.lookups++;
    const found = this.#index.nearest(query.partition, query.vector, threshold, this.#clock());
    if (found !== undefined) this.stats.hits++;
    return found;
  }

  /** Remembers that `query`'s answer is stored under `key` until `expiresAt`, here and on every instance. */
  remember(query: EmbeddedPrompt, key: CacheKey, expiresAt: number): void {
    const prompt: SharedPrompt = { key, partition: query.partition, vector: query.vector, expiresAt };
    this.#index.add(prompt);
    this.#share?.publish(prompt).catch((error: unknown) => this.#onError('share', error));
  }

  /** The answer a remembered prompt pointed at is gone (expired, evicted, invalidated). */
  forget(key: CacheKey): void {
    this.#index.remove(cacheKeyString(key));
  }

  /** Forgets the prompts matching `filter` in this instance; returns how many. */
  invalidate(filter: CacheFilter): number {
    return this.#index.invalidate(filter);
  }

  sweep(): number {
    return this.#index.sweep(this.#clock());
  }

  async close(): Promise<void> {
    await this.#share?.close();
  }
}
