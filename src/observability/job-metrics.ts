/**
 * The job queues' metrics: depth and oldest waiting job per queue and status
 * (read from the queue at scrape time), how long jobs take, failures and
 * retries, and webhook deliveries.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What the queue reports per queue (structurally JobQueue's `counts`). */
export interface QueueCountsSource {
  readonly names: readonly string[];
  counts(queue: string): Promise<{ counts: Readonly<Record<string, number>>; oldestQueuedMs: number }>;
}

export interface JobMetrics {
  /** A job's handler ended: `outcome` completed, retried (failed, will run again), failed (dead-lettered). */
  jobEnded(queue: string, outcome: 'completed' | 'retried' | 'failed' | 'cancelled', seconds: number): void;
  /** One webhook delivery attempt. */
  webhookAttempt(ok: boolean): void;
}

export function registerJobMetrics(registry: Registry, source: QueueCountsSource): JobMetrics {
  const registers = [registry];
  new Gauge({
    name: 'switchyard_queue_depth',
    help: 'Jobs in each queue by status (queued: waiting, active: running)',
    aggregator: 'max', // every worker reads the same shared queue
    labelNames: ['queue', 'status'],
    registers,
    async collect() {
      this.reset();
      for (const name of source.names) {
        const { counts } = await source.counts(name).catch(() => ({ counts: {} as Record<string, number> }));
        for (const status of ['queued', 'active'] as const)
          this.set({ queue: name, status }, counts[status] ?? 0);
      }
    },
  });
  new Gauge({
    name: 'switchyard_queue_oldest_job_age_seconds',
    help: 'Age of the oldest job waiting in each queue',
    aggregator: 'max', // every worker reads the same shared queue
    labelNames: ['queue'],
    registers,
    async collect() {
      this.reset();
      for (const name of source.names) {
        const { oldestQueuedMs } = await source.counts(name).catch(() => ({ oldestQueuedMs: 0 }));
        this.set({ queue: name }, oldestQueuedMs / 1000);
      }
    },
  });
  const duration = new Histogram({
    name: 'switchyard_job_duration_seconds',
    help: 'Time a job handler ran, by queue and outcome',
    labelNames: ['queue', 'outcome'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800],
    registers,
  });
  const ended = new Counter({
    name: 'switchyard_jobs_total',
    help: 'Job runs that ended, by queue and outcome (completed, retried, failed: dead-lettered, cancelled)',
    labelNames: ['queue', 'outcome'],
    registers,
  });
  const webhooks = new Counter({
    name: 'switchyard_webhook_deliveries_total',
    help: 'Webhook delivery attempts, by result (delivered, failed)',
    labelNames: ['result'],
    registers,
  });
  return {
    jobEnded(queue, outcome, seconds) {
      ended.inc({ queue, outcome });
      duration.observe({ queue, outcome }, seconds);
    },
    webhookAttempt(ok) {
      webhooks.inc({ result: ok ? 'delivered' : 'failed' });
    },
  };
}
