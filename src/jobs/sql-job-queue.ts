/**
 * The job queue on the gateway's SQL database (SQLite or PostgreSQL, table
 * `jobs`, migration 0009_jobs): the default backend. Durable: a job is a row,
 * so a restart loses nothing, and a worker that dies mid-job loses nothing
 * either: its lease (`locked_until`, renewed by its heartbeat) lapses and any
 * worker of that queue takes the job again, which counts as an attempt.
 *
 * Statements: sql-job-store.ts (the atomic claim, fencing tokens); workers:
 * sql-job-worker.ts. A worker polls each queue it works every `pollMs` while
 * idle; an `add` in the same process wakes it at once. The caller owns the
 * `Database` and runs the migrations (`migrate`) before using the queue.
 *
 * Cancel: a queued job is cancelled in one conditional UPDATE; an active one
 * gets `cancel_requested`, which its worker reads on its next heartbeat
 * (within `heartbeatMs`; at once when the worker is in this process) and
 * aborts the handler's signal; the job then ends `cancelled`.
 */
import type { Database } from '../store/sql.ts';
import { resolveAddOptions, toJsonText } from './job-options.ts';
import {
  type AddJobOptions,
  type JobQueue,
  type JobRecord,
  QUEUE_NAMES,
  type QueueCounts,
  type QueueName,
  type QueueWorker,
  type WorkOptions,
} from './job-queue.ts';
import { recordOf, SqlJobStore } from './sql-job-store.ts';
import { Doorbell, SqlJobWorker } from './sql-job-worker.ts';

export interface SqlJobQueueOptions {
  /**
   * How long a claimed job stays a worker's without a heartbeat: a worker
   * killed mid-job delays the job's next run by up to this (plus `sweepMs`).
   * @default 30000
   */
  leaseMs?: number;
  /**
   * How often a worker renews its leases and looks for cancels of its running
   * jobs (one statement for all of them). Must be under a third of `leaseMs`.
   * @default min(1000, leaseMs / 3)
   */
  heartbeatMs?: number;
  /**
   * How often an idle worker asks for due jobs. Jobs added in the same process
   * wake it at once; this bounds the wait for other processes' jobs and retries.
   * @default 100
   */
  pollMs?: number;
  /**
   * How often a worker looks for lapsed leases in each queue it works.
   * @default min(5000, leaseMs / 2)
   */
  sweepMs?: number;
  /** Told when a claim, heartbeat or finish fails (the database is down); the workers keep trying. */
  onError?: (error: unknown) => void;
}

export class SqlJobQueue implements JobQueue {
  readonly backend = 'sql' as const;
  readonly #store: SqlJobStore;
  readonly #settings: ConstructorParameters<typeof SqlJobWorker>[2];
  readonly #doorbells = new Map<QueueName, Doorbell>(QUEUE_NAMES.map((q) => [q, new Doorbell()]));
  readonly #workers = new Set<SqlJobWorker>();
  #closed = false;

  constructor(database: Database, options: SqlJobQueueOptions = {}) {
    const leaseMs = options.leaseMs ?? 30_000;
    const heartbeatMs = options.heartbeatMs ?? Math.min(1_000, Math.floor(leaseMs / 3));
    const pollMs = options.pollMs ?? 100;
    if (!(leaseMs >= 30)) throw new RangeError('SqlJobQueue: leaseMs must be >= 30');
    if (!(heartbeatMs >= 1 && heartbeatMs * 3 <= leaseMs)) {
      throw new RangeError('SqlJobQueue: heartbeatMs must be >= 1 and at most a third of leaseMs');
    }
    if (!(pollMs >= 1 && pollMs <= 60_000)) throw new RangeError('SqlJobQueue: pollMs must be 1 to 60000');
    this.#store = new SqlJobStore(database);
    this.#settings = {
      leaseMs,
      heartbeatMs,
      pollMs,
      sweepMs: options.sweepMs ?? Math.min(5_000, Math.floor(leaseMs / 2)),
      onError: options.onError ?? (() => {}),
    };
  }

  async add(queue: QueueName, payload: unknown, options?: AddJobOptions): Promise<JobRecord> {
    this.#assertOpen();
    const job = resolveAddOptions(queue, options);
    const inserted = await this.#store.insert({
      id: job.id,
      queue,
      priority: job.priority,
      payload: toJsonText(payload),
      maxAttempts: job.maxAttempts,
      backoffMs: job.backoffMs,
      now: Date.now(),
    });
    if (inserted !== undefined) {
      this.#doorbells.get(queue)?.ring();
      return recordOf(inserted);
    }
    const existing = await this.#store.get(job.id);
    if (existing === undefined) throw new Error(`job ${job.id} existed when added but not when read`);
    return recordOf(existing);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const row = await this.#store.get(id);
    return row === undefined ? undefined : recordOf(row);
  }

  async cancel(id: string): Promise<JobRecord | undefined> {
    // A job may move between queued and active between two statements (taken,
    // or failed and queued for a retry): each move is tried again, a few times.
    for (let tries = 0; tries < 5; tries++) {
      const cancelled = await this.#store.cancelQueued(id);
      if (cancelled !== undefined) return recordOf(cancelled);
      const requested = await this.#store.requestCancel(id);
      if (requested !== undefined) {
        for (const worker of this.#workers) worker.cancelLocally(id);
        return recordOf(requested);
      }
      const row = await this.#store.get(id);
      if (row === undefined) return undefined;
      if (row.status !== 'queued' && row.status !== 'active') return recordOf(row);
    }
    return this.get(id);
  }

  work(options: WorkOptions): QueueWorker {
    this.#assertOpen();
    const worker = new SqlJobWorker(this.#store, options, this.#settings, this.#doorbells, (w) =>
      this.#workers.delete(w),
    );
    this.#workers.add(worker);
    return worker;
  }

  counts(queue: QueueName): Promise<QueueCounts> {
    return this.#store.counts(queue);
  }

  purgeFinished(beforeMs: number): Promise<number> {
    return this.#store.purgeFinished(beforeMs);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#workers].map((worker) => worker.close()));
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('SqlJobQueue is closed');
  }
}
