/**
 * The job queue on Redis through BullMQ, for clusters: one BullMQ Queue per
 * named queue, under the deployment's Redis prefix (`RedisKeys.bullmqPrefix`,
 * e.g. `switchyard:jobs:fast:wait`). Workers: bullmq-job-worker.ts; the
 * mapping onto BullMQ (priorities, states, the cancel mark): bullmq-jobs.ts.
 *
 * Ids. The caller gives only an id to `get` and `cancel`, so an index hash
 * (`RedisKeys.jobIndex`, id -> queue) says which queue holds it; `add` claims
 * the id there first (HSETNX), which also makes an id unique across queues,
 * as the SQL queue's primary key does. An add that finds the id claimed
 * returns the job stored under it, unchanged.
 *
 * Cancel: one script (jobs-cancel-7.lua) either moves a waiting job to
 * BullMQ's failed set marked cancelled, or marks an active one for its worker.
 *
 * One connection (`connectRedis` with `blocking`: no command deadline,
 * `maxRetriesPerRequest: null` as BullMQ requires) is shared by the queues,
 * the workers' commands and ours; each BullMQ Worker opens one more of its
 * own for its blocking fetch.
 *
 * Redis Cluster: every key here (BullMQ's and ours) carries the hash tag
 * `{jobs}` (RedisKeys with `cluster`), so the scripts that span them run on
 * one slot; the queue then lives on one master, as BullMQ requires.
 *
 * Not covered: retention (finished jobs stay, as BullMQ's default; so do
 * their index entries).
 */
import type { Queue } from 'bullmq';
import { connectRedis, type RedisConnection } from '../store/redis.ts';
import { RedisKeys } from '../store/redis-keys.ts';
import { defineScript, type ScriptCall } from '../store/redis-scripts.ts';
import type { RedisTarget } from '../store/redis-topology.ts';
import { BullJobWorker, type BullWorkerSettings } from './bullmq-job-worker.ts';
import {
  BACKOFF_TYPE,
  bullmqModule,
  CANCEL_FIELD,
  JOB_NAME,
  recordOfJob,
  statusOf,
  toBullPriority,
} from './bullmq-jobs.ts';
import { asStoredJson, assertQueueName, resolveAddOptions } from './job-options.ts';
import {
  type AddJobOptions,
  JOB_STATUSES,
  type JobQueue,
  type JobRecord,
  type JobStatus,
  QUEUE_NAMES,
  type QueueCounts,
  type QueueName,
  type QueueWorker,
  type WorkOptions,
} from './job-queue.ts';
import { CANCELLED_MESSAGE } from './job-run.ts';

/** Jobs removed per BullMQ `clean` call in a retention sweep. */
const PURGE_PAGE = 1_000;

export interface BullJobQueueOptions {
  /** `storage.redis_url`, or the Sentinel or Cluster topology. */
  redis: RedisTarget;
  /** The deployment's Redis names (its prefix). @default new RedisKeys() */
  keys?: RedisKeys;
  /**
   * A job's lock (BullMQ `lockDuration`), renewed by its worker at half of it:
   * a worker killed mid-job delays the job by up to this plus two stalled checks.
   * @default 30000
   */
  leaseMs?: number;
  /**
   * How often each worker runs BullMQ's stalled check, which puts the jobs of
   * dead workers back (BullMQ's own default is 30 s).
   * @default 5000
   */
  stalledIntervalMs?: number;
  /**
   * How often a worker reads the cancel marks of its running jobs.
   * @default 500
   */
  heartbeatMs?: number;
  /** Told of BullMQ's errors (a connection lost, a lock not renewed); the workers keep going. */
  onError?: (error: unknown) => void;
  /** Shown in `CLIENT LIST`. @default 'switchyard-jobs' */
  connectionName?: string;
}

export class BullJobQueue implements JobQueue {
  readonly backend = 'bullmq' as const;
  readonly #redis: RedisConnection;
  readonly #keys: RedisKeys;
  readonly #queues = new Map<QueueName, Queue>();
  readonly #workers = new Set<BullJobWorker>();
  readonly #settings: BullWorkerSettings;
  readonly #cancel: ScriptCall;
  readonly #oldestQueued: ScriptCall;
  #closed = false;

  constructor(options: BullJobQueueOptions) {
    const leaseMs = options.leaseMs ?? 30_000;
    const stalledIntervalMs = options.stalledIntervalMs ?? 5_000;
    const heartbeatMs = options.heartbeatMs ?? 500;
    if (!(leaseMs >= 100)) throw new RangeError('BullJobQueue: leaseMs must be >= 100');
    if (!(stalledIntervalMs >= 10)) throw new RangeError('BullJobQueue: stalledIntervalMs must be >= 10');
    if (!(heartbeatMs >= 1)) throw new RangeError('BullJobQueue: heartbeatMs must be >= 1');
    this.#keys = options.keys ?? new RedisKeys();
    this.#redis = connectRedis(options.redis, {
      name: options.connectionName ?? 'switchyard-jobs',
      blocking: true,
    });
    this.#cancel = defineScript(this.#redis, 'jobs-cancel-7');
    this.#oldestQueued = defineScript(this.#redis, 'jobs-oldest-queued-3');
    this.#settings = {
      redis: this.#redis,
      keys: this.#keys,
      queueFor: (name) => this.#queue(name),
      leaseMs,
      stalledIntervalMs,
      heartbeatMs,
      onError: options.onError ?? (() => {}),
    };
  }

  async add(queue: QueueName, payload: unknown, options?: AddJobOptions): Promise<JobRecord> {
    this.#assertOpen();
    const job = resolveAddOptions(queue, options);
    const data = asStoredJson(payload);
    const claimed = (await this.#redis.hsetnx(this.#keys.jobIndex, job.id, queue)) === 1;
    let target = queue;
    if (!claimed) {
      const existing = await this.get(job.id);
      if (existing !== undefined) return existing;
      // Claimed but not (yet) in BullMQ: the first add is in flight or died
      // half way. Adding again is safe: BullMQ ignores an id it already has.
      target = ((await this.#redis.hget(this.#keys.jobIndex, job.id)) as QueueName | null) ?? queue;
    }
    const added = await this.#queue(target).add(JOB_NAME, data, {
      jobId: job.id,
      priority: toBullPriority(job.priority),
      attempts: job.maxAttempts,
      backoff: { type: BACKOFF_TYPE, delay: job.backoffMs },
    });
    if (claimed) return recordOfJob(added, 'queued', null);
    // BullMQ answers a duplicate with the data it was given, not the stored job's: read that.
    return (await this.get(job.id)) ?? recordOfJob(added, 'queued', null);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const name = (await this.#redis.hget(this.#keys.jobIndex, id)) as QueueName | null;
    if (name === null) return undefined;
    const queue = this.#queue(name);
    // The state first: BullMQ moves a job to its final set and stamps it finished in one script,
    // so a job read after a final state carries its finish. Read side by side, the two could
    // straddle that script: a job already failed (cancelled) that says it never finished.
    const state = await queue.getJobState(id);
    const [job, mark] = await Promise.all([
      queue.getJob(id),
      this.#redis.hget(queue.toKey(id), CANCEL_FIELD),
    ]);
    const status = statusOf(state, mark);
    if (job === undefined || status === undefined) return undefined;
    return recordOfJob(job, status, mark);
  }

  async cancel(id: string): Promise<JobRecord | undefined> {
    const name = (await this.#redis.hget(this.#keys.jobIndex, id)) as QueueName | null;
    if (name === null) return undefined;
    const queue = this.#queue(name);
    const { keys } = queue;
    const outcome = await this.#cancel(
      [
        keys['wait']!,
        keys['paused']!,
        keys['prioritized']!,
        keys['delayed']!,
        keys['failed']!,
        queue.toKey(id),
        this.#keys.jobsCancelled(name),
      ],
      [id, Date.now(), CANCEL_FIELD, CANCELLED_MESSAGE],
    );
    if (outcome === 2) for (const worker of this.#workers) worker.cancelLocally(id);
    return this.get(id);
  }

  work(options: WorkOptions): QueueWorker {
    this.#assertOpen();
    const worker = new BullJobWorker(this.#settings, options, (w) => this.#workers.delete(w));
    this.#workers.add(worker);
    return worker;
  }

  async counts(name: QueueName): Promise<QueueCounts> {
    assertQueueName(name);
    const queue = this.#queue(name);
    const { keys } = queue;
    const [bull, cancelled, oldest] = await Promise.all([
      queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed'),
      this.#redis.scard(this.#keys.jobsCancelled(name)),
      this.#oldestQueued([keys['wait']!, keys['prioritized']!, keys['delayed']!], [queue.toKey('')]),
    ]);
    const count = (type: string) => bull[type] ?? 0;
    const counts = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    counts.queued = count('waiting') + count('prioritized') + count('delayed');
    counts.active = count('active');
    counts.completed = count('completed');
    // Cancelled jobs sit in BullMQ's failed set.
    counts.cancelled = cancelled;
    counts.failed = Math.max(0, count('failed') - cancelled);
    const created = Number(oldest);
    return { counts, oldestQueuedMs: created < 0 ? 0 : Math.max(0, Date.now() - created) };
  }

  async purgeFinished(beforeMs: number): Promise<number> {
    this.#assertOpen();
    let removed = 0;
    for (const name of QUEUE_NAMES) {
      const queue = this.#queue(name);
      for (const type of ['completed', 'failed'] as const) {
        // A page at a time, bounded: a sweep never holds Redis for long.
        for (let page = 0; page < 100; page++) {
          // BullMQ takes an age and reads its clock in this same synchronous step: the age is
          // taken here, per call, so the sweep's own round trips never move the cutoff later.
          const ids = await queue.clean(Math.max(0, Date.now() - beforeMs), PURGE_PAGE, type);
          if (ids.length > 0) {
            await this.#redis
              .multi()
              .hdel(this.#keys.jobIndex, ...ids)
              .srem(this.#keys.jobsCancelled(name), ...ids)
              .exec();
          }
          removed += ids.length;
          if (ids.length < PURGE_PAGE) break;
        }
      }
    }
    return removed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#workers].map((worker) => worker.close()));
    await Promise.all([...this.#queues.values()].map((queue) => queue.close()));
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  #queue(name: QueueName): Queue {
    let queue = this.#queues.get(name);
    if (queue === undefined) {
      const { Queue } = bullmqModule();
      queue = new Queue(name, { connection: this.#redis, prefix: this.#keys.bullmqPrefix });
      queue.on('error', (error) => this.#settings.onError(error));
      this.#queues.set(name, queue);
    }
    return queue;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('BullJobQueue is closed');
  }
}
