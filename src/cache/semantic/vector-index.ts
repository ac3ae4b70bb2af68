/**
 * The semantic cache's in-process index: prompt vectors, grouped by
 * partition (one embedder, model, scope, and everything in the request but
 * the prompt itself), searched for the nearest by a flat scan of one
 * partition's vectors, which are kept side by side in one Float32Array.
 *
 * A flat scan is exact and needs no tuning; its cost grows with the
 * partition: ~0.5 µs a 512-float vector on this 2-core VM, so ~5 ms at 10,000
 * prompts in one partition (unrolling the loop gained nothing measurable). The
 * index is bounded (`maxEntries`, oldest first out), which bounds the scan
 * too; an approximate index for larger partitions is not built.
 */
import { type CacheFilter, type CacheKey, cacheKeyString, matchesFilter } from '../cache-store.ts';

/** One remembered prompt: where its answer is (the exact cache's key) and until when. */
export interface IndexedPrompt {
  /** The answer's exact-cache key: the prompt's identity too (the same prompt twice is one entry). */
  readonly key: CacheKey;
  readonly partition: string;
  readonly vector: Float32Array;
  readonly expiresAt: number;
}

export interface NearestPrompt {
  readonly prompt: IndexedPrompt;
  /** Cosine similarity to the query, in [-1, 1]. */
  readonly score: number;
}

interface Slot {
  prompt: IndexedPrompt;
  partition: Partition;
  /** Row of the partition's matrix (and of its `slots`). */
  row: number;
}

class Partition {
  readonly dimensions: number;
  matrix: Float32Array;
  readonly slots: Slot[] = [];

  constructor(dimensions: number) {
    this.dimensions = dimensions;
    this.matrix = new Float32Array(dimensions * 8);
  }
}

export class VectorIndex {
  readonly #maxEntries: number;
  readonly #partitions = new Map<string, Partition>();
  /** Every slot by its key string, in insertion order (the eviction order). */
  readonly #slots = new Map<string, Slot>();

  constructor(options: { maxEntries: number }) {
    this.#maxEntries = Math.max(1, options.maxEntries);
  }

  get size(): number {
    return this.#slots.size;
  }

  /** Remembers a prompt (replacing the same key's earlier vector); the oldest go past `maxEntries`. */
  add(prompt: IndexedPrompt): void {
    const id = cacheKeyString(prompt.key);
    this.remove(id);
    let partition = this.#partitions.get(prompt.partition);
    if (partition !== undefined && partition.dimensions !== prompt.vector.length) {
      // A partition names its embedder; a served model that changed its dimensions
      // makes the old vectors incomparable: they go, never a wrong comparison.
      for (const slot of [...partition.slots]) this.remove(cacheKeyString(slot.prompt.key));
      partition = undefined;
    }
    if (partition === undefined) {
      partition = new Partition(prompt.vector.length);
      this.#partitions.set(prompt.partition, partition);
    }
    const row = partition.slots.length;
    if ((row + 1) * partition.dimensions > partition.matrix.length) {
      const grown = new Float32Array(partition.matrix.length * 2);
      grown.set(partition.matrix);
      partition.matrix = grown;
    }
    partition.matrix.set(prompt.vector, row * partition.dimensions);
    const slot: Slot = { prompt, partition, row };
    partition.slots.push(slot);
    this.#slots.set(id, slot);
    while (this.#slots.size > this.#maxEntries) {
      const oldest = this.#slots.keys().next().value!;
      this.remove(oldest);
    }
  }

  /** The most similar live prompt of `partition` scoring at least `threshold`, if any. */
  nearest(
    partition: string,
    vector: Float32Array,
    threshold: number,
    now: number,
  ): NearestPrompt | undefined {
    const p = this.#partitions.get(partition);
    if (p === undefined || p.dimensions !== vector.length) return undefined;
    const { matrix, dimensions, slots } = p;
    let best: Slot | undefined;
    let bestScore = threshold;
    for (let row = 0; row < slots.length; row++) {
      const base = row * dimensions;
      let dot = 0;
      for (let i = 0; i < dimensions; i++) dot += matrix[base + i]! * vector[i]!;
      if (dot >= bestScore && slots[row]!.prompt.expiresAt > now) {
        best = slots[row];
        bestScore = dot;
      }
    }
    return best === undefined ? undefined : { prompt: best.prompt, score: bestScore };
  }

  /** Forgets the prompt whose answer is under `id` (`cacheKeyString` of its key). */
  remove(id: string): boolean {
    const slot = this.#slots.get(id);
    if (slot === undefined) return false;
    this.#slots.delete(id);
    const { partition, row } = slot;
    // Swap-remove: the last row moves into the freed one.
    const last = partition.slots.pop()!;
    if (last !== slot) {
      const d = partition.dimensions;
      partition.matrix.copyWithin(row * d, last.row * d, (last.row + 1) * d);
      last.row = row;
      partition.slots[row] = last;
    }
    if (partition.slots.length === 0) this.#partitions.delete(slot.prompt.partition);
    return true;
  }

  /** Forgets the prompts matching `filter` (all for an empty one); returns how many. */
  invalidate(filter: CacheFilter): number {
    let removed = 0;
    for (const [id, slot] of this.#slots) {
      if (matchesFilter(slot.prompt.key, filter) && this.remove(id)) removed++;
    }
    return removed;
  }

  /** Drops expired prompts (their answers are gone from the exact cache too). */
  sweep(now: number): number {
    let removed = 0;
    for (const [id, slot] of this.#slots) {
      if (slot.prompt.expiresAt <= now && this.remove(id)) removed++;
    }
    return removed;
  }
}
