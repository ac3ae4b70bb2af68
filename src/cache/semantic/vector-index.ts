/**
 * The semantic cache's in-process index: prompt vectors, grouped by
 * partition (one embedder, model, scope, and everything in the request but
 * the prompt itself), searched for the nearest by a flat scan of one
 * partition's vectors, which are kept side by side in one Float32Array.
 *
 * A flat scan is exact and needs no tuning; its cost grows with the
 * partition: ~0.5 µs a 512-float vector on this 2-core VM (unrolling the loop
 * gained nothing measurable). The
 * index is bounded (`maxEntries`, oldest first out), which bounds the scan
 * too, and a partition past APPROXIMATE_ABOVE prompts is searched through
 * hashing tables instead (approximate: lsh-tables.ts).
 */
import { type CacheFilter, type CacheKey, cacheKeyString, matchesFilter } from '../cache-store.ts';
import { cosine } from './embedder.ts';
import { bucketsOf, LshTables } from './lsh-tables.ts';

/**
 * Past this many prompts a partition is searched through hashing tables
 * (lsh-tables.ts) instead of a flat scan: hashing a query costs about what
 * scanning ~350 512-float vectors does (~170 µs here), and the tables then
 * compare a few hundred candidates. bench/cache.ts, lexical vectors, planted
 * neighbours at cosine ~0.97: flat 0.54 / 5.0 / 15.1 ms at 1,000 / 10,000 /
 * 30,000 prompts, tables 0.19 / 0.64 / 1.85 ms; recall 100 % flat, 99.5-100 %
 * tables.
 */
export const APPROXIMATE_ABOVE = 512;

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
  /** Its bucket in each hashing table, once the partition has them. */
  buckets: Uint32Array | undefined;
}

class Partition {
  readonly dimensions: number;
  matrix: Float32Array;
  readonly slots: Slot[] = [];
  /** Built when the partition grows past APPROXIMATE_ABOVE; kept up to date from then on. */
  lsh: LshTables<Slot> | undefined;

  constructor(dimensions: number) {
    this.dimensions = dimensions;
    this.matrix = new Float32Array(dimensions * 8);
  }
}

export class VectorIndex {
  readonly #maxEntries: number;
  readonly #approximateAbove: number;
  readonly #partitions = new Map<string, Partition>();
  /** Every slot by its key string, in insertion order (the eviction order). */
  readonly #slots = new Map<string, Slot>();

  /** `approximateAbove`: partition size past which hashing tables are used (Infinity: always flat). */
  constructor(options: { maxEntries: number; approximateAbove?: number }) {
    this.#maxEntries = Math.max(1, options.maxEntries);
    this.#approximateAbove = options.approximateAbove ?? APPROXIMATE_ABOVE;
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
    const slot: Slot = { prompt, partition, row, buckets: undefined };
    partition.slots.push(slot);
    if (partition.lsh !== undefined) {
      slot.buckets = bucketsOf(prompt.vector);
      partition.lsh.add(slot, slot.buckets);
    } else if (partition.slots.length > this.#approximateAbove) {
      const lsh = new LshTables<Slot>();
      for (const member of partition.slots) {
        member.buckets = bucketsOf(member.prompt.vector);
        lsh.add(member, member.buckets);
      }
      partition.lsh = lsh;
    }
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
    if (p.lsh !== undefined) return nearestCandidate(p.lsh, vector, threshold, now);
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
    if (partition.lsh !== undefined && slot.buckets !== undefined) partition.lsh.remove(slot, slot.buckets);
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

/** The best of the prompts sharing a bucket with the query (approximate: a near prompt may share none). */
function nearestCandidate(
  lsh: LshTables<Slot>,
  vector: Float32Array,
  threshold: number,
  now: number,
): NearestPrompt | undefined {
  let best: Slot | undefined;
  let bestScore = threshold;
  for (const slot of lsh.candidates(bucketsOf(vector))) {
    const dot = cosine(slot.prompt.vector, vector);
    if (dot >= bestScore && slot.prompt.expiresAt > now) {
      best = slot;
      bestScore = dot;
    }
  }
  return best === undefined ? undefined : { prompt: best.prompt, score: bestScore };
}
