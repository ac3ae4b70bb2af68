/**
 * Embeddings through a Batcher (the seed's `EmbeddingBatcher`): callers embed
 * one text at a time, and the texts of concurrent callers reach `embedMany`
 * together, up to `maxBatch` (default 100) per call. Embedding APIs charge
 * per token, not per call, so batching costs nothing and saves the per-call
 * overhead and rate-limit requests.
 *
 * The gateway's `/v1/embeddings` coalescing (dispatch/embedding-batches.ts)
 * uses the Batcher directly: its items carry each caller's billing.
 */
import { Batcher, type BatcherOptions } from './batcher.ts';

export interface EmbeddingBatcherOptions<V> extends Omit<BatcherOptions<string, V>, 'run'> {
  /**
   * Embeds many texts in one call: one vector per text, in order; an `Error`
   * in a position fails that text's caller alone.
   */
  embedMany: (texts: string[], signal: AbortSignal) => Promise<ReadonlyArray<V | Error>>;
}

export class EmbeddingBatcher<V = number[]> {
  readonly #batcher: Batcher<string, V>;

  constructor(options: EmbeddingBatcherOptions<V>) {
    const { embedMany, ...batching } = options;
    this.#batcher = new Batcher({ ...batching, run: embedMany });
  }

  /** The text's vector, embedded together with whatever other texts are waiting. */
  embed(text: string, signal?: AbortSignal): Promise<V> {
    return this.#batcher.submit(text, signal);
  }

  /**
   * The texts' vectors, in order. Each text is batched like a caller of its
   * own (a long list spreads over several calls, and shares them with other
   * callers); rejects with the first failure.
   */
  embedMany(texts: readonly string[], signal?: AbortSignal): Promise<V[]> {
    return Promise.all(texts.map((text) => this.#batcher.submit(text, signal)));
  }

  /** Texts waiting for their batch to leave. */
  get pending(): number {
    return this.#batcher.pending;
  }

  /** Embeds whatever waits now; resolves once every call has finished. */
  close(): Promise<void> {
    return this.#batcher.close();
  }
}
