/**
 * What the semantic cache needs from an embedder: text in, a unit-length
 * vector out, so that the dot product of two vectors is their cosine
 * similarity. The built-in lexical embedder needs no model server; any
 * embeddings model the gateway serves can stand in for it (see
 * src/server/served-embedder.ts), and a library user may bring their own.
 */
export interface Embedder {
  /** Names the embedder in metrics, logs and the index (vectors of two embedders never meet). */
  readonly name: string;
  /** A unit-length vector for `text`. Rejects if the embedder cannot answer (the lookup is then a miss). */
  embed(text: string, signal?: AbortSignal): Promise<Float32Array>;
}

/** Scales `vector` in place to unit length (a zero vector stays zero). */
export function normalize(vector: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += vector[i]! * vector[i]!;
  if (sum === 0) return vector;
  const scale = 1 / Math.sqrt(sum);
  for (let i = 0; i < vector.length; i++) vector[i]! *= scale;
  return vector;
}

/** Cosine similarity of two unit vectors of one length (their dot product). */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  return dot;
}
