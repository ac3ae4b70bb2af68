/**
 * The approximate side of the semantic index: random-hyperplane hashing
 * (SimHash) for cosine similarity, used by a partition once a flat scan of it
 * would cost more than hashing does.
 *
 * Each of TABLES tables hashes a vector to BITS bits, one per random
 * hyperplane (which side of it the vector lies on). Two vectors at angle θ
 * agree on a bit with probability 1 − θ/π; at the default threshold (cosine
 * 0.95, θ ≈ 18°) that is 0.90, so they share one table's bucket with
 * probability 0.90^12 ≈ 0.28 and at least one of 16 tables' with ≈ 99.5 %.
 * Unrelated vectors (θ ≈ 90°) share a bucket 1 time in 4,096 per table, so a
 * query compares ~N/256 candidates instead of N (more when prompts share
 * words, as templated ones do). bench/cache.ts measures the recall and the
 * cost against the flat scan.
 *
 * The hyperplanes come from a fixed seed: the same for every partition of a
 * dimension, built once.
 */
import { seededRandom } from '../../util/random.ts';

export const TABLES = 16;
export const BITS = 12;

/** The hyperplanes for one dimension count: TABLES × BITS normals, side by side. */
const planesByDimensions = new Map<number, Float32Array>();

function planesFor(dimensions: number): Float32Array {
  let planes = planesByDimensions.get(dimensions);
  if (planes === undefined) {
    planes = new Float32Array(TABLES * BITS * dimensions);
    // Seeded: deterministic, so runs and instances agree.
    const random = seededRandom(0x5eed_1234);
    // Gaussian components (Box-Muller): uniformly random directions.
    for (let i = 0; i < planes.length; i++) {
      planes[i] = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    }
    planesByDimensions.set(dimensions, planes);
  }
  return planes;
}

/** The vector's bucket in each table. */
export function bucketsOf(vector: Float32Array): Uint32Array {
  const dimensions = vector.length;
  const planes = planesFor(dimensions);
  const buckets = new Uint32Array(TABLES);
  let base = 0;
  for (let table = 0; table < TABLES; table++) {
    let bucket = 0;
    for (let bit = 0; bit < BITS; bit++) {
      let dot = 0;
      for (let i = 0; i < dimensions; i++) dot += planes[base + i]! * vector[i]!;
      base += dimensions;
      bucket = (bucket << 1) | (dot >= 0 ? 1 : 0);
    }
    buckets[table] = bucket;
  }
  return buckets;
}

/** Members of each table's buckets; members are anything the caller keeps (its slots). */
export class LshTables<Member> {
  readonly #tables: Map<number, Member[]>[] = Array.from({ length: TABLES }, () => new Map());

  add(member: Member, buckets: Uint32Array): void {
    for (let table = 0; table < TABLES; table++) {
      const map = this.#tables[table]!;
      const bucket = map.get(buckets[table]!);
      if (bucket === undefined) map.set(buckets[table]!, [member]);
      else bucket.push(member);
    }
  }

  remove(member: Member, buckets: Uint32Array): void {
    for (let table = 0; table < TABLES; table++) {
      const map = this.#tables[table]!;
      const bucket = map.get(buckets[table]!);
      if (bucket === undefined) continue;
      const at = bucket.indexOf(member);
      if (at === -1) continue;
      bucket[at] = bucket[bucket.length - 1]!;
      bucket.pop();
      if (bucket.length === 0) map.delete(buckets[table]!);
    }
  }

  /** Every member sharing at least one bucket with `buckets` (each once). */
  candidates(buckets: Uint32Array): Set<Member> {
    const found = new Set<Member>();
    for (let table = 0; table < TABLES; table++) {
      const bucket = this.#tables[table]!.get(buckets[table]!);
      if (bucket !== undefined) for (const member of bucket) found.add(member);
    }
    return found;
  }
}
