/**
 * The job queue: work that leaves the request path (async completions, batch
 * files, webhook deliveries) is queued, run by workers (in the gateway's
 * process or in `switchyard worker` processes), retried with exponential
 * backoff, dead-lettered when its attempts run out, and readable by id.
 *
 * One interface, two backends that pass the same conformance suite
 * (test/conformance/job-queue.ts): a durable queue on the SQL store (the
 * default: survives a restart, nothing to install) and BullMQ on Redis (for
 * clusters). A worker that dies (kill -9) loses nothing: its jobs' leases
 * lapse and another worker runs them again, so a handler must be idempotent
 * (the batch runner keeps each line's result by line, the ledger keys rows by
 * request id and attempt).
 */

/** The seed's routing: short interactive work, long work, embeddings. */
export const QUEUE_NAMES = ['fast', 'heavy', 'embeddings'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

/**
 * `queued`: waiting (or waiting out a retry's backoff); `active`: a worker
 * holds it; `completed`: the handler returned; `failed`: dead-lettered (its
 * attempts ran out, or it failed permanently); `cancelled`: cancelled before
 * it completed.
 */
export type JobStatus = 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';
export const JOB_STATUSES: readonly JobStatus[] = ['queued', 'active', 'completed', 'failed', 'cancelled'];

export interface AddJobOptions {
  /**
   * The job's id: 1 to 128 of `A-Z a-z 0-9 _ . ~ -`, not only digits (BullMQ
   * keeps all-digit ids and `:` for itself; both backends apply the one rule).
   * Ids are unique across queues. Adding an id that exists, in any queue,
   * returns the existing job unchanged (idempotent enqueue). Default: a new
   * random id.
   */
  id?: string;
  /** Higher runs first within a queue; an integer within ±1,000,000. @default 0 */
  priority?: number;
  /** Attempts in all, the first included; 1 to 1,000. @default 3 */
  maxAttempts?: number;
  /**
   * The first retry waits this long; each next one twice as long
   * (`backoffMs * 2^(attempt - 1)`), capped at a day. @default 1000
   */
  backoffMs?: number;
}

export interface JobRecord {
  readonly id: string;
  readonly queue: QueueName;
  readonly status: JobStatus;
  readonly priority: number;
  /** What `add` was given (JSON). */
  readonly payload: unknown;
  /** What the handler returned (JSON), once completed. */
  readonly result: unknown;
  /** The last failure's message, if any (`cancelled` once cancelled); kept when a retry then completes. */
  readonly error: string | null;
  /**
   * Attempts started so far. A start whose worker died counts too; on BullMQ
   * so does the start that finds the attempts spent (it fails the job at once).
   */
  readonly attempts: number;
  readonly maxAttempts: number;
  /** Free-form progress the handler reported (JSON), e.g. a batch's counts or webhook attempts. */
  readonly progress: unknown;
  /** Epoch ms. */
  readonly createdAt: number;
  /** When the latest attempt started (epoch ms). */
  readonly startedAt: number | null;
  /** When it completed, failed for good or was cancelled (epoch ms). */
  readonly finishedAt: number | null;
  /** Set when cancel was asked while the job was active; the worker's signal is then aborted. */
  readonly cancelRequested: boolean;
}

export interface JobContext {
  /**
   * Aborted when the job is cancelled, when the worker closes (after its
   * grace), or when the worker lost the job's lease (another worker may run
   * it); the handler should stop soon after. Once cancelled, whatever the
   * handler throws ends the job `cancelled`; if it returns, the job completes.
   */
  readonly signal: AbortSignal;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Stores progress on the job (visible through `get`). */
  reportProgress(progress: unknown): Promise<void>;
}

export type JobHandler = (job: JobRecord, context: JobContext) => Promise<unknown>;

/** Thrown by a handler for a failure that retrying cannot fix: the job fails at once. */
export class PermanentJobError extends Error {
  override readonly name = 'PermanentJobError';
}

/**
 * Thrown by a handler that knows when its next attempt should run (a webhook
 * delivery on its configured retry schedule): that wait replaces the
 * exponential backoff. The attempts still count against `maxAttempts`.
 */
export class RetryLaterError extends Error {
  override readonly name = 'RetryLaterError';
  readonly delayMs: number;
  constructor(message: string, delayMs: number) {
    super(message);
    this.delayMs = Math.max(0, delayMs);
  }
}

/** The wait before the next attempt a handler's failure asks for, if it asks. */
export function requestedRetryDelay(error: unknown): number | undefined {
  return error instanceof RetryLaterError ? error.delayMs : undefined;
}

export interface WorkOptions {
  /** Jobs running at once, per queue (an integer >= 1); a queue not listed is not worked. */
  concurrency: Partial<Record<QueueName, number>>;
  handler: JobHandler;
  /**
   * Called when a handler throws (after the job is marked for retry or
   * failed): `job` as stored then, `final` when it will not run again (failed
   * or cancelled). Not called for a job cancelled or dead-lettered without
   * its handler running.
   */
  onFailure?: (job: JobRecord, error: unknown, final: boolean) => void;
}

/** How long `QueueWorker.close()` lets running handlers finish before aborting their signals. */
export const DEFAULT_CLOSE_GRACE_MS = 10_000;

/**
 * Test hook (fenced by a symbol, like fastify's `kTestInternals`): stops a
 * worker the way kill -9 stops its process. No more heartbeats, lease or lock
 * renewals, cancel polls or claims; the running jobs are neither finished nor
 * released, and their handlers' promises are left to the caller. The
 * conformance suite uses it to prove that another worker runs such a job
 * again once its lease lapses.
 */
export const abandonWorker: unique symbol = Symbol('switchyard.jobs.abandonWorker');

export interface QueueWorker {
  /**
   * Stops taking jobs, aborts the running ones' signals after `graceMs`, and
   * waits for them to end (a handler that throws then counts as a failed
   * attempt, retried if attempts remain).
   * @default graceMs DEFAULT_CLOSE_GRACE_MS
   */
  close(graceMs?: number): Promise<void>;
  [abandonWorker]?(): Promise<void>;
}

export interface QueueCounts {
  /** Jobs per status. */
  readonly counts: Readonly<Record<JobStatus, number>>;
  /** Age of the oldest queued job in ms, 0 when none is queued. */
  readonly oldestQueuedMs: number;
}

export interface JobQueue {
  readonly backend: 'sql' | 'bullmq';
  /** Queues a job; `payload` is stored as JSON (what JSON cannot hold is lost as `JSON.stringify` loses it). */
  add(queue: QueueName, payload: unknown, options?: AddJobOptions): Promise<JobRecord>;
  get(id: string): Promise<JobRecord | undefined>;
  /**
   * A queued job is cancelled at once; an active one gets `cancelRequested`
   * and its worker's signal is aborted (it ends `cancelled` unless it had
   * already completed). A finished job is returned unchanged.
   */
  cancel(id: string): Promise<JobRecord | undefined>;
  /** Starts a worker in this process. */
  work(options: WorkOptions): QueueWorker;
  counts(queue: QueueName): Promise<QueueCounts>;
  /**
   * Removes finished jobs (completed, failed, cancelled) that finished before
   * `beforeMs` (epoch ms): the retention sweep. Queued and active jobs stay.
   * Returns how many were removed.
   */
  purgeFinished(beforeMs: number): Promise<number>;
  /**
   * Closes workers started here (each with the default grace) and the
   * backend's own connections; the SQL backend leaves the `Database`, which
   * its caller owns, open.
   */
  close(): Promise<void>;
}
