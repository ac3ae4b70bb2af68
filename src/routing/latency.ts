/**
 * Exponentially weighted moving averages of each target's latency and time to
 * first token, fed by attempt outcomes. O(1) per update and per lookup.
 *
 * A failure is fed as a penalised sample (at least twice the current average),
 * so a target that fails fast does not look fast.
 */

export interface LatencyStats {
  /** EWMA of whole-attempt latency, ms; undefined before the first sample. */
  latencyMs: number | undefined;
  /** EWMA of time to first token (streams), ms. */
  ttftMs: number | undefined;
  samples: number;
}

const ALPHA = 0.3;
const FAILURE_FLOOR_MS = 1_000;

export class LatencyTracker {
  readonly #stats = new Map<string, LatencyStats>();

  get(targetId: string): LatencyStats | undefined {
    return this.#stats.get(targetId);
  }

  record(targetId: string, outcome: { ok: boolean; latencyMs: number; ttftMs?: number | undefined }): void {
    let stats = this.#stats.get(targetId);
    if (!stats) {
      stats = { latencyMs: undefined, ttftMs: undefined, samples: 0 };
      this.#stats.set(targetId, stats);
    }
    const sample = outcome.ok
      ? outcome.latencyMs
      : Math.max(outcome.latencyMs, 2 * (stats.latencyMs ?? 0), FAILURE_FLOOR_MS);
    stats.latencyMs = ewma(stats.latencyMs, sample);
    if (outcome.ok && outcome.ttftMs !== undefined) stats.ttftMs = ewma(stats.ttftMs, outcome.ttftMs);
    stats.samples++;
  }
}

function ewma(previous: number | undefined, sample: number): number {
  return previous === undefined ? sample : previous + ALPHA * (sample - previous);
}
