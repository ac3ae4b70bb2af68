/**
 * A worker of the SQL job queue: one claim loop per queue it works, and one
 * heartbeat for all its running jobs.
 *
 * A loop claims as many due jobs as its queue has free slots (one statement,
 * sql-job-store.ts), starts them, and otherwise sleeps for `pollMs`, or less:
 * an `add` in this process, a job of its own ending, or close ring its
 * doorbell. Now and then (`sweepMs`) it first releases the queue's lapsed
 * leases, so a job whose worker died runs again.
 *
 * The heartbeat renews the leases of the running jobs every `heartbeatMs` and
 * reads back, in the same statement, whether a cancel was asked for any: the
 * handler's signal is aborted then. A lease it finds gone (the worker stalled
 * longer than a lease and another took the job) aborts that handler too; its
 * outcome is then dropped (the fencing token no longer matches).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { retryDelayMs } from './job-backoff.ts';
import { resolveConcurrency, toJsonText } from './job-options.ts';
import {
  abandonWorker,
  DEFAULT_CLOSE_GRACE_MS,
  type QueueName,
  type QueueWorker,
  requestedRetryDelay,
  type WorkOptions,
} from './job-queue.ts';
import {
  closeGracefully,
  notifyFailure,
  type Outcome,
  type RunningJob,
  RunningJobs,
  runHandler,
} from './job-run.ts';
import { type JobRow, recordOf, type SqlJobStore } from './sql-job-store.ts';

export interface SqlWorkerSettings {
  leaseMs: number;
  heartbeatMs: number;
  pollMs: number;
  sweepMs: number;
  onError: (error: unknown) => void;
}

/** After a failed claim the loop waits `pollMs`, doubling per failure up to this. */
const MAX_ERROR_WAIT_MS = 5_000;

/** Wakes the sleepers of one queue in this process; a ring between a check and the sleep is not lost. */
export class Doorbell {
  #rings = 0;
  readonly #sleepers = new Set<() => void>();

  get rings(): number {
    return this.#rings;
  }

  ring(): void {
    this.#rings++;
    for (const wake of this.#sleepers) wake();
    this.#sleepers.clear();
  }

  /** Resolves after `ms`, or at the next ring, or at once if it rang since `seen`. */
  wait(ms: number, seen: number): Promise<void> {
    if (this.#rings !== seen) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#sleepers.add(wake);
    });
  }
}

interface Held {
  run: RunningJob;
  token: string;
  queue: QueueName;
}

export class SqlJobWorker implements QueueWorker {
  readonly #store: SqlJobStore;
  readonly #options: WorkOptions;
  readonly #settings: SqlWorkerSettings;
  readonly #doorbells: ReadonlyMap<QueueName, Doorbell>;
  readonly #onClosed: (worker: SqlJobWorker) => void;
  readonly #running = new RunningJobs();
  readonly #held = new Map<string, Held>();
  readonly #active = new Map<QueueName, number>();
  readonly #loops: Promise<void>[];
  readonly #heartbeat: NodeJS.Timeout;
  #beating = false;
  #stopping = false;
  /** Killed (the test hook): nothing it still runs is written. */
  #abandoned = false;
  #closing: Promise<void> | undefined;

  constructor(
    store: SqlJobStore,
    options: WorkOptions,
    settings: SqlWorkerSettings,
    doorbells: ReadonlyMap<QueueName, Doorbell>,
    onClosed: (worker: SqlJobWorker) => void,
  ) {
    this.#store = store;
    this.#options = options;
    this.#settings = settings;
    this.#doorbells = doorbells;
    this.#onClosed = onClosed;
    const queues = resolveConcurrency(options);
    this.#heartbeat = setInterval(() => void this.#beat(), settings.heartbeatMs);
    this.#heartbeat.unref();
    this.#loops = queues.map(([queue, concurrency]) => this.#loop(queue, concurrency));
  }

  /** A cancel asked in this process: the handler's signal is aborted now rather than at the next heartbeat. */
  cancelLocally(id: string): void {
    this.#running.get(id)?.abort('cancelled');
  }

  close(graceMs = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
    this.#closing ??= closeGracefully(this.#running, graceMs, () => this.#stop()).finally(() => {
      clearInterval(this.#heartbeat);
      this.#onClosed(this);
    });
    return this.#closing;
  }

  async [abandonWorker](): Promise<void> {
    this.#abandoned = true;
    clearInterval(this.#heartbeat);
    await this.#stop();
    this.#onClosed(this);
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    for (const doorbell of this.#doorbells.values()) doorbell.ring();
    await Promise.all(this.#loops);
  }

  async #loop(queue: QueueName, concurrency: number): Promise<void> {
    const doorbell = this.#doorbells.get(queue)!;
    let nextSweep = 0;
    let failures = 0;
    while (!this.#stopping) {
      const seen = doorbell.rings;
      const free = concurrency - (this.#active.get(queue) ?? 0);
      if (free > 0) {
        try {
          if (Date.now() >= nextSweep) {
            nextSweep = Date.now() + this.#settings.sweepMs;
            await this.#store.releaseLapsed(queue);
          }
          const { token, rows } = await this.#store.claim(queue, free, this.#settings.leaseMs);
          failures = 0;
          for (const row of rows) this.#start(queue, row, token);
          // Every slot filled: more may be due; the next turn finds the queue full and sleeps.
          if (rows.length > 0) continue;
        } catch (error) {
          this.#settings.onError(error);
          failures++;
          await sleep(Math.min(MAX_ERROR_WAIT_MS, this.#settings.pollMs * 2 ** failures), undefined, {
            ref: false,
          });
          continue;
        }
      }
      await doorbell.wait(this.#settings.pollMs, seen);
    }
  }

  #start(queue: QueueName, row: JobRow, token: string): void {
    const run = this.#running.start(row.id);
    this.#held.set(row.id, { run, token, queue });
    this.#active.set(queue, (this.#active.get(queue) ?? 0) + 1);
    void this.#execute(row, token, run).finally(() => {
      if (this.#held.get(row.id)?.run === run) this.#held.delete(row.id);
      this.#active.set(queue, (this.#active.get(queue) ?? 1) - 1);
      this.#running.end(run);
      this.#doorbells.get(queue)?.ring();
    });
  }

  async #execute(row: JobRow, token: string, run: RunningJob): Promise<void> {
    const outcome = await runHandler(this.#options.handler, recordOf(row), run, async (progress) => {
      if (!this.#abandoned) await this.#store.setProgress(row.id, token, toJsonText(progress));
    });
    if (this.#abandoned) return;
    try {
      await this.#finish(row, token, outcome);
    } catch (error) {
      // Not stored: the lease lapses and the job runs again (handlers are idempotent).
      this.#settings.onError(error);
    }
  }

  async #finish(row: JobRow, token: string, outcome: Outcome): Promise<void> {
    switch (outcome.kind) {
      case 'completed':
        await this.#store.complete(row.id, token, toJsonText(outcome.result));
        return;
      case 'cancelled': {
        const stored = await this.#store.cancelRun(row.id, token);
        if (stored) notifyFailure(this.#options.onFailure, recordOf(stored), outcome.error, true);
        return;
      }
      case 'failed': {
        const final = outcome.permanent || row.attempts >= row.max_attempts;
        const stored = await this.#store.fail(row.id, token, {
          message: outcome.message,
          final,
          runAt:
            Date.now() + (requestedRetryDelay(outcome.error) ?? retryDelayMs(row.backoff_ms, row.attempts)),
        });
        if (stored) {
          notifyFailure(this.#options.onFailure, recordOf(stored), outcome.error, stored.status !== 'queued');
        }
        return;
      }
    }
  }

  async #beat(): Promise<void> {
    if (this.#beating || this.#held.size === 0) return;
    this.#beating = true;
    try {
      const held = [...this.#held.entries()].map(([id, h]) => ({ id, token: h.token, run: h.run }));
      const replies = await this.#store.heartbeat(held, this.#settings.leaseMs);
      const kept = new Map(replies.map((r) => [r.id, r.cancelRequested]));
      for (const { id, run } of held) {
        const cancelRequested = kept.get(id);
        if (cancelRequested === undefined) {
          // Gone: finished meanwhile (then nothing is left to abort), or taken by another worker.
          if (this.#held.get(id)?.run === run) run.abort('lease-lost');
        } else if (cancelRequested) {
          run.abort('cancelled');
        }
      }
    } catch (error) {
      // The leases last several heartbeats: the next one may still renew them.
      this.#settings.onError(error);
    } finally {
      this.#beating = false;
    }
  }
}
