/**
 * The process's event-loop delay: one sampler, read in windows.
 *
 * The `event_loop` health check and the `nodejs_eventloop_lag_*` gauges of
 * /metrics used to keep a delay histogram each (Node's, at 20 ms and, in
 * prom-client's defaults, at 10 ms): two timers, 150 wake-ups a second of a
 * process with nothing to do, each reader resetting its own. Now one
 * histogram serves both: whoever owns the cadence (the health checker, every
 * `health.interval_ms`) ends a window with `roll()`, and everyone reads that
 * last whole window (`last`), so two readers never take each other's samples
 * (two Prometheus servers scraping one instance see the same figures, where
 * prom-client's own gauges reset at every scrape).
 *
 * Values are as Node records them: the time from one sample to the next, so
 * an idle loop reads the sampling period (10 ms) and a stall reads its length.
 */
import { type ELDHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

/** How often the loop is sampled (ms): prom-client's default, which dashboards of its gauges expect. */
export const LOOP_DELAY_RESOLUTION_MS = 10;

/** One window's delays, in milliseconds (all 0 for a window with no sample). */
export interface LoopDelayStats {
  samples: number;
  min: number;
  max: number;
  mean: number;
  stddev: number;
  p50: number;
  p90: number;
  p99: number;
}

const NO_SAMPLES: LoopDelayStats = Object.freeze({
  samples: 0,
  min: 0,
  max: 0,
  mean: 0,
  stddev: 0,
  p50: 0,
  p90: 0,
  p99: 0,
});

export class LoopDelay {
  readonly #histogram: ELDHistogram;
  #last: LoopDelayStats = NO_SAMPLES;

  constructor(resolutionMs = LOOP_DELAY_RESOLUTION_MS) {
    this.#histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.#histogram.enable();
  }

  /** The last whole window (no samples before the first `roll`). */
  get last(): LoopDelayStats {
    return this.#last;
  }

  /** Ends the current window: its figures become `last`, and the next window starts empty. */
  roll(): LoopDelayStats {
    const h = this.#histogram;
    const ms = (ns: number) => ns / 1e6;
    this.#last =
      h.count === 0
        ? NO_SAMPLES
        : {
            samples: h.count,
            min: ms(h.min),
            max: ms(h.max),
            mean: ms(h.mean),
            stddev: ms(h.stddev),
            p50: ms(h.percentile(50)),
            p90: ms(h.percentile(90)),
            p99: ms(h.percentile(99)),
          };
    h.reset();
    return this.#last;
  }

  /** Stops sampling (the timer is released). */
  stop(): void {
    this.#histogram.disable();
  }
}
