/**
 * A worker of the BullMQ job queue: one BullMQ Worker per queue it works
 * (`concurrency` is BullMQ's own, per queue), each running our handler
 * through one processor that maps outcomes onto BullMQ's:
 *
 * - completed: the handler's result is the job's return value;
 * - a retryable failure is thrown as is (BullMQ retries it after the backoff
 *   of job-backoff.ts, registered as the custom backoff strategy);
 * - a PermanentJobError, a failure of the last attempt, or a cancel is
 *   thrown as BullMQ's UnrecoverableError: failed at once, no retry.
 *
 * Leases are BullMQ's job locks (`lockDuration` = `leaseMs`, renewed by the
 * worker), and a killed worker's jobs are put back by BullMQ's stalled check
 * (every `stalledIntervalMs`, in every worker). BullMQ would fail a job that
 * stalls more than `maxStalledCount` times; that is set out of reach and the
 * rule is ours: a start beyond the job's attempts fails it without running
 * (so there, unlike on SQL, the start that finds the attempts spent counts).
 *
 * Cancel of an active job: cancel() marks the job's hash (jobs-cancel-7.lua);
 * every `heartbeatMs` the worker reads the marks of the jobs it runs, in one
 * pipeline, and aborts those handlers' signals (at once when cancel() was
 * called in this process). A job re-run after a stall checks its mark first.
 */

import type { Job, MinimalJob, Queue, Worker } from 'bullmq';
import type { RedisConnection } from '../store/redis.ts';
import type { RedisKeys } from '../store/redis-keys.ts';
import { bullmqModule, CANCEL_FIELD, recordOfJob, wrapProgress } from './bullmq-jobs.ts';
import { retryDelayMs } from './job-backoff.ts';
import { asStoredJson, MAX_ATTEMPTS, resolveConcurrency } from './job-options.ts';
import {
  abandonWorker,
  DEFAULT_CLOSE_GRACE_MS,
  type JobStatus,
  type QueueName,
  type QueueWorker,
  requestedRetryDelay,
  type WorkOptions,
} from './job-queue.ts';
import {
  CANCELLED_MESSAGE,
  closeGracefully,
  LEASE_LAPSED_MESSAGE,
  notifyFailure,
  RunningJobs,
  runHandler,
} from './job-run.ts';

export interface BullWorkerSettings {
  redis: RedisConnection;
  keys: RedisKeys;
  queueFor: (name: QueueName) => Queue;
  leaseMs: number;
  stalledIntervalMs: number;
  heartbeatMs: number;
  onError: (error: unknown) => void;
}

/** What a thrown error means, for the `failed` event that follows it. */
interface Thrown {
  /** The job ends cancelled. */
  cancelled: boolean;
  /** Failed without its handler running: onFailure is not told. */
  silent: boolean;
  /** What the handler threw (onFailure gets it, not our wrapper). */
  original: unknown;
}

/**
 * BullMQ's custom backoff strategy: our formula, counted in attempts started
 * (BullMQ's own count leaves out the stalled ones), as the SQL queue counts.
 */
function retryWait(failures: number, _type?: string, error?: Error, job?: MinimalJob): number {
  // A handler that asked for its own wait (RetryLaterError) gets it.
  const asked = (error as { retryDelayMs?: number } | undefined)?.retryDelayMs;
  if (typeof asked === 'number') return asked;
  const backoff = job?.opts.backoff;
  const delay = typeof backoff === 'object' ? (backoff.delay ?? 0) : 0;
  // BullMQ hands over a full Job; its MinimalJob type just does not name the field.
  const started = (job as { attemptsStarted?: number } | undefined)?.attemptsStarted;
  return retryDelayMs(delay, started ?? failures);
}

export class BullJobWorker implements QueueWorker {
  readonly #settings: BullWorkerSettings;
  readonly #options: WorkOptions;
  readonly #onClosed: (worker: BullJobWorker) => void;
  readonly #running = new RunningJobs();
  /** The hash key of each running job, for the cancel poll. */
  readonly #jobKeys = new Map<string, string>();
  readonly #thrown = new WeakMap<Error, Thrown>();
  readonly #workers: Worker[];
  readonly #poll: NodeJS.Timeout;
  #polling = false;
  #abandoned = false;
  #closing: Promise<void> | undefined;

  constructor(settings: BullWorkerSettings, options: WorkOptions, onClosed: (worker: BullJobWorker) => void) {
    this.#settings = settings;
    this.#options = options;
    this.#onClosed = onClosed;
    const queues = resolveConcurrency(options);
    this.#workers = queues.map(([name, concurrency]) => this.#startWorker(name, concurrency));
    this.#poll = setInterval(() => void this.#pollCancels(), settings.heartbeatMs);
    this.#poll.unref();
  }

  cancelLocally(id: string): void {
    this.#running.get(id)?.abort('cancelled');
  }

  close(graceMs = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
    this.#closing ??= closeGracefully(this.#running, graceMs, async () => {
      // BullMQ's close stops fetching and waits for the running jobs to be stored.
      await Promise.all(this.#workers.map((worker) => worker.close()));
    }).finally(() => {
      clearInterval(this.#poll);
      this.#onClosed(this);
    });
    return this.#closing;
  }

  async [abandonWorker](): Promise<void> {
    this.#abandoned = true;
    clearInterval(this.#poll);
    // Forced: no waiting, no more lock renewals; what the handlers return later is not stored.
    await Promise.all(this.#workers.map((worker) => worker.close(true)));
    this.#onClosed(this);
  }

  #startWorker(name: QueueName, concurrency: number): Worker {
    const { Worker } = bullmqModule();
    const settings = this.#settings;
    const worker = new Worker(name, (job: Job) => this.#process(name, job), {
      connection: settings.redis,
      prefix: settings.keys.bullmqPrefix,
      concurrency,
      lockDuration: settings.leaseMs,
      stalledInterval: settings.stalledIntervalMs,
      maxStalledCount: MAX_ATTEMPTS,
      settings: { backoffStrategy: retryWait },
    });
    worker.on('error', (error) => settings.onError(error));
    worker.on('failed', (job, error) => this.#failed(name, job, error));
    // Another worker may take the job now: this handler should stop.
    worker.on('lockRenewalFailed', (ids) => {
      for (const id of ids) this.#running.get(id)?.abort('lease-lost');
    });
    return worker;
  }

  async #process(name: QueueName, job: Job): Promise<unknown> {
    const id = job.id!;
    const maxAttempts = job.opts.attempts ?? 1;
    if (job.attemptsStarted > maxAttempts) {
      throw this.#tag(new (bullmqModule().UnrecoverableError)(LEASE_LAPSED_MESSAGE), {
        cancelled: false,
        silent: true,
        original: undefined,
      });
    }
    const jobKey = this.#settings.queueFor(name).toKey(id);
    // Only a job that ran before can carry a cancel mark when it starts (a stalled one).
    if (job.attemptsStarted > 1 && (await this.#cancelMark(jobKey)) !== null) {
      throw this.#cancelled(undefined, true);
    }
    const run = this.#running.start(id);
    this.#jobKeys.set(id, jobKey);
    try {
      const record = recordOfJob(job, 'active', null);
      const outcome = await runHandler(this.#options.handler, record, run, async (progress) => {
        if (!this.#abandoned) await job.updateProgress(wrapProgress(asStoredJson(progress)));
      });
      switch (outcome.kind) {
        case 'completed':
          return outcome.result;
        case 'cancelled':
          throw this.#cancelled(outcome.error, false);
        case 'failed': {
          // A cancel asked but not polled yet still wins over a retry, as on SQL.
          if ((await this.#cancelMark(jobKey)) === 'requested') throw this.#cancelled(outcome.error, false);
          const final = outcome.permanent || job.attemptsStarted >= maxAttempts;
          const { UnrecoverableError } = bullmqModule();
          const error = final ? new UnrecoverableError(outcome.message) : new Error(outcome.message);
          const asked = requestedRetryDelay(outcome.error);
          if (asked !== undefined) Object.assign(error, { retryDelayMs: asked });
          throw this.#tag(error, { cancelled: false, silent: false, original: outcome.error });
        }
      }
    } finally {
      if (this.#running.get(id) === run) this.#jobKeys.delete(id);
      this.#running.end(run);
    }
  }

  #cancelMark(jobKey: string): Promise<string | null> {
    return this.#settings.redis.hget(jobKey, CANCEL_FIELD);
  }

  #cancelled(original: unknown, silent: boolean): Error {
    const { UnrecoverableError } = bullmqModule();
    return this.#tag(new UnrecoverableError(CANCELLED_MESSAGE), { cancelled: true, silent, original });
  }

  #tag(error: Error, thrown: Thrown): Error {
    this.#thrown.set(error, thrown);
    return error;
  }

  /** BullMQ stored the failure (retry scheduled, or failed for good): count a cancel, tell onFailure. */
  #failed(name: QueueName, job: Job | undefined, error: Error): void {
    if (job === undefined) return;
    const thrown = this.#thrown.get(error);
    if (thrown?.cancelled) {
      // After BullMQ's move, so counts never show a cancel BullMQ has not stored;
      // lost if the process dies in between (the job still reads back cancelled).
      this.#settings.redis
        .sadd(this.#settings.keys.jobsCancelled(name), job.id!)
        .catch(this.#settings.onError);
    }
    if (thrown?.silent) return;
    const final = job.finishedOn !== undefined;
    const status: JobStatus = !final ? 'queued' : thrown?.cancelled ? 'cancelled' : 'failed';
    notifyFailure(
      this.#options.onFailure,
      recordOfJob(job, status, thrown?.cancelled ? 'requested' : null),
      thrown === undefined ? error : thrown.original,
      final,
    );
  }

  async #pollCancels(): Promise<void> {
    if (this.#polling || this.#jobKeys.size === 0) return;
    this.#polling = true;
    try {
      const running = [...this.#jobKeys];
      const pipeline = this.#settings.redis.pipeline();
      for (const [, key] of running) pipeline.hget(key, CANCEL_FIELD);
      const replies = (await pipeline.exec()) ?? [];
      running.forEach(([id], i) => {
        if (replies[i]?.[1] === 'requested') this.#running.get(id)?.abort('cancelled');
      });
    } catch (error) {
      this.#settings.onError(error);
    } finally {
      this.#polling = false;
    }
  }
}
