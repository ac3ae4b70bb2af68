/**
 * Random sources for routing choices and retry jitter. Seedable, so tests and reproducible
 * deployments (`models.<name>.seed`) get the same split every run.
 */

export type RandomSource = () => number;

/** mulberry32: a tiny, fast 32-bit PRNG; plenty for traffic splitting, not for secrets. */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
