/**
 * What the BullMQ queue and its workers share: loading BullMQ, and the one
 * mapping between our job model and BullMQ's (priority, state, progress, the
 * cancel mark), so each rule is written once.
 *
 * Cancelled. BullMQ has no such state: a cancelled job sits in BullMQ's
 * failed set with `CANCEL_FIELD` in its hash (`cancelled` when it was
 * cancelled while waiting, `requested` when the cancel reached it while
 * active), and reads back as `cancelled`. The mark lives in the job's own
 * hash (BullMQ ignores fields it does not know and deletes the hash with the
 * job), so it goes wherever the job goes.
 */
import { createRequire } from 'node:module';
import type { Job, JobState } from 'bullmq';
import type { JobRecord, JobStatus, QueueName } from './job-queue.ts';

/** BullMQ is loaded on first use: a gateway on the SQL queue (the default) never pays for it. */
const requireLazily = createRequire(import.meta.url);
let bullmq: typeof import('bullmq') | undefined;
export function bullmqModule(): typeof import('bullmq') {
  bullmq ??= requireLazily('bullmq') as typeof import('bullmq');
  return bullmq;
}

/** The job hash field holding the cancel mark (see the header). */
export const CANCEL_FIELD = 'sy-cancel';
export type CancelMark = 'cancelled' | 'requested';

/** Every job has this BullMQ name: the queue, not the name, says what it is. */
export const JOB_NAME = 'job';

/** A custom type, so retries wait what job-backoff.ts says (our workers register it). */
export const BACKOFF_TYPE = 'switchyard';

/**
 * BullMQ runs lower priority numbers first, within 1..2^21, and jobs without
 * one (0) before all prioritized jobs. Every job gets `2^20 - ours`, so all
 * sit in one prioritized set in our order (higher first, FIFO within one).
 */
const PRIORITY_ORIGIN = 2 ** 20;
export function toBullPriority(priority: number): number {
  return PRIORITY_ORIGIN - priority;
}

function fromBullPriority(priority: number): number {
  return priority === 0 ? 0 : PRIORITY_ORIGIN - priority;
}

/**
 * Progress is stored wrapped (`{ value }`): BullMQ's own default is 0, which
 * must read back as "none reported", not as a reported 0.
 */
export function wrapProgress(progress: unknown): { value: unknown } {
  return { value: progress };
}

function unwrapProgress(progress: unknown): unknown {
  if (typeof progress === 'object' && progress !== null && 'value' in progress) return progress.value;
  return null;
}

/** Our status for BullMQ's state and the cancel mark; undefined for a job BullMQ does not know. */
export function statusOf(state: JobState | 'unknown', mark: string | null): JobStatus | undefined {
  switch (state) {
    case 'completed':
      return 'completed';
    case 'failed':
      return mark === null ? 'failed' : 'cancelled';
    case 'active':
      return 'active';
    case 'waiting':
    case 'prioritized':
    case 'delayed':
    case 'waiting-children':
      return 'queued';
    default:
      return undefined;
  }
}

export function recordOfJob(job: Job, status: JobStatus, mark: string | null): JobRecord {
  return {
    id: job.id!,
    queue: job.queueName as QueueName,
    status,
    priority: fromBullPriority(job.priority),
    payload: job.data ?? null,
    result: status === 'completed' ? (job.returnvalue ?? null) : null,
    error: job.failedReason || null,
    attempts: job.attemptsStarted,
    maxAttempts: job.opts.attempts ?? 1,
    progress: unwrapProgress(job.progress),
    createdAt: job.timestamp,
    startedAt: job.processedOn ?? null,
    finishedAt: job.finishedOn ?? null,
    cancelRequested: mark === 'requested',
  };
}
