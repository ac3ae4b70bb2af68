/**
 * Every statement on the `jobs` table (migration 0009_jobs), each one
 * statement so each is atomic on its own, and the one dialect difference in
 * one place: the claim.
 *
 * Claim. One UPDATE takes the best queued rows (priority desc, then add
 * order; due: `run_at` passed) and marks them active under a new lease token,
 * returning them. On PostgreSQL its subquery locks the rows it picks with
 * FOR UPDATE SKIP LOCKED, so concurrent claimers skip each other's rows
 * rather than wait for them, and never take one twice. On SQLite the whole
 * UPDATE runs under the database's single write lock (a second process waits
 * up to busy_timeout, see sqlite-driver.ts), so two claims cannot interleave.
 * A read comes first: most claims are idle polls that find nothing due, and
 * those take no lock at all.
 *
 * Fencing. A claim's token is on its rows while it holds them; a heartbeat,
 * progress report or finish names the token and changes nothing once the row
 * carries another (the lease lapsed and another worker took the job), so a
 * worker that was only slow cannot overwrite the run that replaced it.
 *
 * Times are epoch ms from the calling process's clock: the processes sharing
 * a database are assumed to agree on the time to well within a lease.
 */
import { randomBytes } from 'node:crypto';
import { type QueryCreator, type Selectable, sql } from 'kysely';
import { type JobsTable, type Schema, stripNul } from '../store/schema.ts';
import type { Database } from '../store/sql.ts';
import { parseJsonText } from './job-options.ts';
import {
  JOB_STATUSES,
  type JobRecord,
  type JobStatus,
  type QueueCounts,
  type QueueName,
} from './job-queue.ts';
import { CANCELLED_MESSAGE, LEASE_LAPSED_MESSAGE } from './job-run.ts';

export type JobRow = Selectable<JobsTable>;

/** A claim's rows and the token that holds their leases. */
export interface Claim {
  token: string;
  rows: JobRow[];
}

export interface HeartbeatReply {
  id: string;
  cancelRequested: boolean;
}

/** A failed attempt: what to store and when the job may run again. */
export interface FailedAttempt {
  message: string;
  /** No attempt follows (permanent, or the attempts are spent). */
  final: boolean;
  /** When a retry may start (ignored when final). */
  runAt: number;
}

let lastSeq = 0;
/** The add order: µs since the epoch, strictly increasing in this process (FIFO within one ms too). */
function nextSeq(): number {
  lastSeq = Math.max(lastSeq + 1, Date.now() * 1000);
  return lastSeq;
}

export class SqlJobStore {
  readonly #database: Database;

  constructor(database: Database) {
    this.#database = database;
  }

  get #db() {
    // The primary always: a lagging replica would hand out a job's old state.
    return this.#database.db;
  }

  /** Inserts a queued job unless the id exists; resolves with the new row, or undefined when it existed. */
  async insert(job: {
    id: string;
    queue: QueueName;
    priority: number;
    payload: string;
    maxAttempts: number;
    backoffMs: number;
    now: number;
  }): Promise<JobRow | undefined> {
    return this.#db
      .insertInto('jobs')
      .values({
        id: job.id,
        queue: job.queue,
        status: 'queued',
        priority: job.priority,
        seq: nextSeq(),
        payload: job.payload,
        result: null,
        error: null,
        progress: null,
        attempts: 0,
        max_attempts: job.maxAttempts,
        backoff_ms: job.backoffMs,
        run_at: job.now,
        locked_until: null,
        lock_token: null,
        cancel_requested: 0,
        created_at: job.now,
        started_at: null,
        finished_at: null,
      })
      .onConflict((conflict) => conflict.column('id').doNothing())
      .returningAll()
      .executeTakeFirst();
  }

  get(id: string): Promise<JobRow | undefined> {
    return this.#db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * Whether `queue` has a row in `status` whose `column` is before `now`: the
   * read a write that usually finds nothing (a poll, a sweep) does first, so
   * that it takes no lock then.
   */
  async #anyRow(
    queue: QueueName,
    status: JobStatus,
    column: 'run_at' | 'locked_until',
    before: '<' | '<=',
    now: number,
  ): Promise<boolean> {
    const row = await this.#db
      .selectFrom('jobs')
      .select('id')
      .where('queue', '=', queue)
      .where('status', '=', status)
      .where(column, before, now)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Takes up to `limit` due queued jobs of `queue` (see the header), best first. */
  async claim(queue: QueueName, limit: number, leaseMs: number): Promise<Claim> {
    const now = Date.now();
    // Most claims are an idle worker's poll (every queue, every poll_ms) and find nothing due:
    // a read says so without the UPDATE's write lock (SQLite) or row locks (PostgreSQL), and
    // for ~a quarter of its CPU. A job due between the read and the next poll waits for that
    // poll, as one queued just after an UPDATE would.
    if (!(await this.#anyRow(queue, 'queued', 'run_at', '<=', now))) return { token: '', rows: [] };
    const token = randomBytes(12).toString('base64url');
    const claimed = {
      status: 'active',
      locked_until: now + leaseMs,
      lock_token: token,
      started_at: now,
    } as const;
    const due = (db: QueryCreator<Schema>) =>
      db
        .selectFrom('jobs')
        .select('id')
        .where('queue', '=', queue)
        .where('status', '=', 'queued')
        .where('run_at', '<=', now)
        .orderBy('priority', 'desc')
        .orderBy('seq')
        .limit(limit);
    let rows: JobRow[];
    if (this.#database.dialect === 'postgres') {
      // A materialized CTE: PostgreSQL may run a LIMIT subquery of `id IN (...)`
      // once per candidate row, and so claim every queued row, not `limit`.
      rows = await this.#db
        .with(
          (cte) => cte('picked').materialized(),
          (db) => due(db).forUpdate().skipLocked(),
        )
        .updateTable('jobs')
        .from('picked')
        .set((eb) => ({ ...claimed, attempts: eb('jobs.attempts', '+', 1) }))
        .whereRef('jobs.id', '=', 'picked.id')
        .returningAll('jobs')
        .execute();
    } else {
      // SQLite runs the subquery once, into a temporary table, under the write lock.
      rows = await this.#db
        .updateTable('jobs')
        .set((eb) => ({ ...claimed, attempts: eb('attempts', '+', 1) }))
        .where('id', 'in', due(this.#db))
        .where('status', '=', 'queued')
        .returningAll()
        .execute();
    }
    // RETURNING keeps no order: the run order is the claim's.
    rows.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    return { token, rows };
  }

  /**
   * Ends the leases of `queue`'s active jobs that lapsed (their workers died):
   * back to queued at once when attempts remain, else failed; cancelled if a
   * cancel was asked meanwhile. Resolves with how many it changed. A read
   * first, so the usual answer (none) takes no write lock.
   */
  async releaseLapsed(queue: QueueName): Promise<number> {
    const now = Date.now();
    const lapsed = this.#db
      .updateTable('jobs')
      .where('queue', '=', queue)
      .where('status', '=', 'active')
      .where('locked_until', '<', now);
    if (!(await this.#anyRow(queue, 'active', 'locked_until', '<', now))) return 0;
    const released = { locked_until: null, lock_token: null } as const;
    // Three statements with disjoint conditions, in this order: a cancel
    // outranks spent attempts, which outrank a retry. Each leaves `active`, so
    // none can match a row another already changed.
    const results = [
      await lapsed
        .set({ ...released, status: 'cancelled', error: CANCELLED_MESSAGE, finished_at: now })
        .where('cancel_requested', '=', 1)
        .executeTakeFirst(),
      await lapsed
        .set({ ...released, status: 'failed', error: LEASE_LAPSED_MESSAGE, finished_at: now })
        .where((eb) => eb('attempts', '>=', eb.ref('max_attempts')))
        .executeTakeFirst(),
      await lapsed.set({ ...released, status: 'queued', run_at: now }).executeTakeFirst(),
    ];
    return results.reduce((sum, r) => sum + Number(r.numUpdatedRows), 0);
  }

  /**
   * Extends the leases still held by `claims` (id and token) and says, for
   * each, whether a cancel was asked. A claim missing from the answer has lost
   * its lease (or just finished).
   */
  async heartbeat(
    claims: ReadonlyArray<{ id: string; token: string }>,
    leaseMs: number,
  ): Promise<HeartbeatReply[]> {
    if (claims.length === 0) return [];
    const rows = await this.#db
      .updateTable('jobs')
      .set({ locked_until: Date.now() + leaseMs })
      .where('id', 'in', [...new Set(claims.map((c) => c.id))])
      .where('lock_token', 'in', [...new Set(claims.map((c) => c.token))])
      .where('status', '=', 'active')
      .returning(['id', 'cancel_requested'])
      .execute();
    return rows.map((row) => ({ id: row.id, cancelRequested: row.cancel_requested === 1 }));
  }

  async setProgress(id: string, token: string, progress: string): Promise<void> {
    await this.#db
      .updateTable('jobs')
      .set({ progress })
      .where('id', '=', id)
      .where('lock_token', '=', token)
      .execute();
  }

  /** Resolves false when the lease was lost (the job is another worker's now). */
  async complete(id: string, token: string, result: string): Promise<boolean> {
    const done = await this.#db
      .updateTable('jobs')
      .set({ status: 'completed', result, finished_at: Date.now(), locked_until: null, lock_token: null })
      .where('id', '=', id)
      .where('lock_token', '=', token)
      .executeTakeFirst();
    return Number(done.numUpdatedRows) > 0;
  }

  /** The handler ended after its cancel: the job is cancelled. Undefined when the lease was lost. */
  cancelRun(id: string, token: string): Promise<JobRow | undefined> {
    return this.#db
      .updateTable('jobs')
      .set({
        status: 'cancelled',
        error: CANCELLED_MESSAGE,
        finished_at: Date.now(),
        locked_until: null,
        lock_token: null,
      })
      .where('id', '=', id)
      .where('lock_token', '=', token)
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * Stores a failed attempt: queued again for `runAt`, or failed when final;
   * cancelled instead when a cancel was asked that the worker had not seen yet.
   * Undefined when the lease was lost.
   */
  fail(id: string, token: string, attempt: FailedAttempt): Promise<JobRow | undefined> {
    const now = Date.now();
    const message = stripNul(attempt.message);
    const next = sql.lit(attempt.final ? 'failed' : 'queued');
    return this.#db
      .updateTable('jobs')
      .set({
        status: sql<JobStatus>`case when cancel_requested = 1 then 'cancelled' else ${next} end`,
        error: sql<string>`case when cancel_requested = 1 then ${CANCELLED_MESSAGE} else ${message} end`,
        // The cast: PostgreSQL types a parameter that only meets NULL in a CASE as text.
        finished_at: attempt.final
          ? now
          : sql<number | null>`case when cancel_requested = 1 then cast(${now} as bigint) else null end`,
        run_at: attempt.final ? now : attempt.runAt,
        locked_until: null,
        lock_token: null,
      })
      .where('id', '=', id)
      .where('lock_token', '=', token)
      .returningAll()
      .executeTakeFirst();
  }

  /** Cancels `id` if it is queued; undefined otherwise. */
  cancelQueued(id: string): Promise<JobRow | undefined> {
    return this.#db
      .updateTable('jobs')
      .set({ status: 'cancelled', error: CANCELLED_MESSAGE, finished_at: Date.now() })
      .where('id', '=', id)
      .where('status', '=', 'queued')
      .returningAll()
      .executeTakeFirst();
  }

  /** Marks `id` for cancelling if it is active (its worker sees it on its next heartbeat); undefined otherwise. */
  requestCancel(id: string): Promise<JobRow | undefined> {
    return this.#db
      .updateTable('jobs')
      .set({ cancel_requested: 1 })
      .where('id', '=', id)
      .where('status', '=', 'active')
      .returningAll()
      .executeTakeFirst();
  }

  /** Deletes finished jobs that finished before `beforeMs`. */
  async purgeFinished(beforeMs: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('jobs')
      .where('status', 'in', ['completed', 'failed', 'cancelled'])
      .where('finished_at', '<', beforeMs)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async counts(queue: QueueName): Promise<QueueCounts> {
    const [rows, oldest] = await Promise.all([
      this.#db
        .selectFrom('jobs')
        .select((eb) => ['status', eb.fn.countAll<number>().as('n')])
        .where('queue', '=', queue)
        .groupBy('status')
        .execute(),
      this.#db
        .selectFrom('jobs')
        .select((eb) => eb.fn.min('created_at').as('created_at'))
        .where('queue', '=', queue)
        .where('status', '=', 'queued')
        .executeTakeFirst(),
    ]);
    const counts = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    for (const row of rows) counts[row.status] = Number(row.n);
    const created = oldest?.created_at;
    return {
      counts,
      oldestQueuedMs:
        created === null || created === undefined ? 0 : Math.max(0, Date.now() - Number(created)),
    };
  }
}

export function recordOf(row: JobRow): JobRecord {
  return {
    id: row.id,
    queue: row.queue as QueueName,
    status: row.status,
    priority: row.priority,
    payload: parseJsonText(row.payload),
    result: parseJsonText(row.result),
    error: row.error,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    progress: parseJsonText(row.progress),
    createdAt: Number(row.created_at),
    startedAt: row.started_at === null ? null : Number(row.started_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
    cancelRequested: row.cancel_requested === 1,
  };
}
