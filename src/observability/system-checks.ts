/**
 * Health checks of the process and its machine: disk space of the data dir,
 * memory, event-loop delay and CPU. Each reads what Node already tracks (a
 * statfs, heap statistics, a delay histogram, CPU time since the last run), so
 * they cost next to nothing at any interval.
 */
import { statfs } from 'node:fs/promises';
import { getHeapStatistics } from 'node:v8';
import type { CheckResult, HealthChecker, HealthStatus } from './health-checker.ts';
import { LoopDelay } from './loop-delay.ts';

/** Where a reading turns degraded, then unhealthy. */
export interface Thresholds {
  degraded: number;
  unhealthy: number;
}

export interface SystemCheckOptions {
  /** The directory whose file system is checked (the data dir). */
  dataDir: string;
  /** Free space, as a fraction of the file system: below these. @default { degraded: 0.1, unhealthy: 0.02 } */
  diskFree?: Thresholds;
  /** Heap used, as a fraction of the heap limit: above these. @default { degraded: 0.85, unhealthy: 0.95 } */
  heapUsed?: Thresholds;
  /** Event-loop delay p99 in ms since the last run: above these. @default { degraded: 200, unhealthy: 1000 } */
  eventLoopP99Ms?: Thresholds;
  /**
   * The process's delay sampler, shared with /metrics (GatewayMetrics): each
   * run ends its window. One of its own when absent (stopped with the checks).
   */
  loopDelay?: LoopDelay;
  /** Process CPU since the last run, as a fraction of one core: above these. @default { degraded: 0.9, unhealthy: 2 } */
  cpu?: Thresholds;
}

function above(value: number, t: Thresholds): HealthStatus {
  return value >= t.unhealthy ? 'unhealthy' : value >= t.degraded ? 'degraded' : 'healthy';
}

function below(value: number, t: Thresholds): HealthStatus {
  return value <= t.unhealthy ? 'unhealthy' : value <= t.degraded ? 'degraded' : 'healthy';
}

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * Registers `disk`, `memory`, `event_loop` and `cpu` on `checker`; returns a
 * stop function for the event-loop sampler (one given in `loopDelay` is left running).
 */
export function registerSystemChecks(checker: HealthChecker, options: SystemCheckOptions): () => void {
  const diskFree = options.diskFree ?? { degraded: 0.1, unhealthy: 0.02 };
  const heapUsed = options.heapUsed ?? { degraded: 0.85, unhealthy: 0.95 };
  const loopP99 = options.eventLoopP99Ms ?? { degraded: 200, unhealthy: 1_000 };
  const cpuShare = options.cpu ?? { degraded: 0.9, unhealthy: 2 };

  // Full disk: the ledger spool, the SQLite database and the job files stop; the instance is unhealthy.
  checker.register(
    'disk',
    async (): Promise<CheckResult> => {
      const fs = await statfs(options.dataDir);
      const total = fs.blocks * fs.bsize;
      const free = fs.bavail * fs.bsize;
      const fraction = total > 0 ? free / total : 1;
      return {
        status: below(fraction, diskFree),
        path: options.dataDir,
        free_bytes: free,
        total_bytes: total,
        free_fraction: round(fraction),
      };
    },
    { critical: true },
  );

  checker.register('memory', (): CheckResult => {
    const heap = getHeapStatistics();
    const usage = process.memoryUsage();
    const fraction = heap.used_heap_size / heap.heap_size_limit;
    return {
      status: above(fraction, heapUsed),
      rss_bytes: usage.rss,
      heap_used_bytes: heap.used_heap_size,
      heap_limit_bytes: heap.heap_size_limit,
      heap_used_fraction: round(fraction),
    };
  });

  // Each run ends the sampler's window: the delays since the last run.
  const loop = options.loopDelay ?? new LoopDelay();
  checker.register('event_loop', (): CheckResult => {
    const { p99, max, mean } = loop.roll();
    return {
      status: above(p99, loopP99),
      p99_ms: round(p99, 1),
      max_ms: round(max, 1),
      mean_ms: round(mean, 1),
    };
  });

  let lastCpu = process.cpuUsage();
  let lastAt = performance.now();
  checker.register('cpu', (): CheckResult => {
    const now = performance.now();
    const used = process.cpuUsage(lastCpu);
    const elapsedMs = now - lastAt;
    lastCpu = process.cpuUsage();
    lastAt = now;
    const share = elapsedMs > 0 ? (used.user + used.system) / 1000 / elapsedMs : 0;
    return { status: above(share, cpuShare), process_cores: round(share) };
  });

  // A shared sampler is its owner's to stop.
  return () => {
    if (options.loopDelay === undefined) loop.stop();
  };
}
