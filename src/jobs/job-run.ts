/**
 * The worker side both backends share: the jobs running in this process, each
 * with the controller behind its handler's signal (cancel, close and a lost
 * lease abort it); one handler run turned into an outcome the backend stores;
 * and the graceful close. The backends differ only in how they take, renew
 * and finish a job.
 */
import { asStoredJson } from './job-options.ts';
import { type JobHandler, type JobRecord, PermanentJobError, type WorkOptions } from './job-queue.ts';

/** The error message a cancelled job keeps. */
export const CANCELLED_MESSAGE = 'cancelled';
/** The error message of a job failed because its workers kept dying until its attempts were spent. */
export const LEASE_LAPSED_MESSAGE = 'its worker stopped without finishing it and its attempts ran out';

/** Why a handler's signal was aborted (`signal.reason`). */
export type AbortCause = 'cancelled' | 'closing' | 'lease-lost';
const ABORT_MESSAGES: Record<AbortCause, string> = {
  cancelled: 'the job was cancelled',
  closing: 'the worker is closing',
  'lease-lost': "the worker lost the job's lease; another worker may run it",
};

export class RunningJob {
  readonly id: string;
  readonly #controller = new AbortController();
  /** Set once a cancel reached this run: whatever the handler throws then ends the job `cancelled`. */
  cancelled = false;

  constructor(id: string) {
    this.id = id;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  abort(cause: AbortCause): void {
    if (cause === 'cancelled') this.cancelled = true;
    if (!this.#controller.signal.aborted) {
      this.#controller.abort(new DOMException(ABORT_MESSAGES[cause], 'AbortError'));
    }
  }
}

/** The jobs a worker is running, by id. */
export class RunningJobs {
  readonly #jobs = new Map<string, RunningJob>();
  #idle: Array<() => void> = [];

  get size(): number {
    return this.#jobs.size;
  }

  ids(): string[] {
    return [...this.#jobs.keys()];
  }

  get(id: string): RunningJob | undefined {
    return this.#jobs.get(id);
  }

  start(id: string): RunningJob {
    const job = new RunningJob(id);
    this.#jobs.set(id, job);
    return job;
  }

  /** Forgets `job` once its outcome is stored (or dropped). */
  end(job: RunningJob): void {
    if (this.#jobs.get(job.id) === job) this.#jobs.delete(job.id);
    if (this.#jobs.size === 0) {
      const waiting = this.#idle;
      this.#idle = [];
      for (const resolve of waiting) resolve();
    }
  }

  abortAll(cause: AbortCause): void {
    for (const job of this.#jobs.values()) job.abort(cause);
  }

  whenIdle(): Promise<void> {
    if (this.#jobs.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}

export type Outcome =
  | { kind: 'completed'; result: unknown }
  | { kind: 'cancelled'; error: unknown }
  | { kind: 'failed'; error: unknown; message: string; permanent: boolean };

/** Runs `handler` on `record`; never throws. A result is normalised to what JSON keeps. */
export async function runHandler(
  handler: JobHandler,
  record: JobRecord,
  run: RunningJob,
  reportProgress: (progress: unknown) => Promise<void>,
): Promise<Outcome> {
  try {
    const result = await handler(record, { signal: run.signal, attempt: record.attempts, reportProgress });
    return { kind: 'completed', result: asStoredJson(result) };
  } catch (error) {
    if (run.cancelled) return { kind: 'cancelled', error };
    return {
      kind: 'failed',
      error,
      message: errorMessage(error),
      permanent: error instanceof PermanentJobError,
    };
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return typeof error === 'string' ? error : String(error);
}

/** Tells `onFailure`, which must not take the worker down with it. */
export function notifyFailure(
  onFailure: WorkOptions['onFailure'],
  job: JobRecord,
  error: unknown,
  final: boolean,
): void {
  if (onFailure === undefined) return;
  try {
    onFailure(job, error, final);
  } catch {
    // The job's outcome is already stored; a failing observer changes nothing.
  }
}

/**
 * Stops taking jobs (`stopTaking` resolves once nothing new will start), lets
 * the running handlers finish for `graceMs`, then aborts their signals, and
 * resolves once every outcome is stored.
 */
export async function closeGracefully(
  running: RunningJobs,
  graceMs: number,
  stopTaking: () => Promise<void>,
): Promise<void> {
  const timer = setTimeout(() => running.abortAll('closing'), Math.max(0, graceMs));
  try {
    await Promise.all([stopTaking(), running.whenIdle()]);
  } finally {
    clearTimeout(timer);
  }
}
