/**
 * Each target's recent latencies (time to first byte), for hedging at the
 * target's observed p95. A sketch is made on a target's first attempt.
 */
import { LatencySketch } from './hedge.ts';

export class LatencySketches {
  readonly #sketches = new Map<string, LatencySketch>();

  get(targetId: string): LatencySketch {
    let sketch = this.#sketches.get(targetId);
    if (!sketch) {
      sketch = new LatencySketch();
      this.#sketches.set(targetId, sketch);
    }
    return sketch;
  }
}
