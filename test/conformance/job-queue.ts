/**
 * What every JobQueue must do (src/jobs/job-queue.ts): keep a job as given
 * and add it once per id; run jobs by priority, oldest first within one;
 * retry with doubling backoff, dead-letter when the attempts run out, fail a
 * PermanentJobError at once; cancel queued jobs at once and active ones
 * through the handler's signal; never run more than a queue's concurrency at
 * once, nor a job twice, nor a queue nobody works; run a dead worker's job
 * again; show progress and counts; close only once running jobs are stored.
 *
 * Every wait is on something the case can observe (a handler's promise, a
 * stored status, through `eventually`); nothing sleeps in place of it. The one
 * timing assertion is a lower bound (a retry cannot start before its backoff),
 * which no slow machine can break.
 */
import assert from 'node:assert/strict';
import {
  abandonWorker,
  type JobContext,
  type JobQueue,
  type JobRecord,
  type JobStatus,
  PermanentJobError,
  type QueueName,
  RetryLaterError,
} from '../../src/jobs/job-queue.ts';
import { type ConformanceCase, eventually, type Harness, runConformance } from './harness.ts';

export interface OpenJobQueueOptions {
  /**
   * Leases (locks) that lapse within about a second and are looked for often,
   * for the dead-worker case; otherwise production-length ones.
   */
  shortLease?: boolean;
}

export interface JobQueueHarness extends Harness {
  /** A queue on the case's store; each one is another process as far as the store can tell. */
  open(options?: OpenJobQueueOptions): Promise<JobQueue>;
}

/** Waiting on what runs elsewhere (a retry's backoff, a stalled-job check) needs more than the default. */
const SLOW = { timeoutMs: 15_000 };

async function statusBecomes(
  queue: JobQueue,
  id: string,
  status: JobStatus,
  options = {},
): Promise<JobRecord> {
  let last: JobRecord | undefined;
  await eventually(
    `job ${id} ${status} (last seen ${last?.status})`,
    async () => {
      last = await queue.get(id);
      return last?.status === status;
    },
    options,
  );
  return last!;
}

/** Resolves when the handler's signal is aborted, with its reason. */
function aborted(context: JobContext): Promise<unknown> {
  const { signal } = context;
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(signal.reason), { once: true }),
  );
}

interface Failure {
  id: string;
  status: JobStatus;
  attempts: number;
  final: boolean;
  message: string;
}

function failureLog(): {
  failures: Failure[];
  onFailure: (job: JobRecord, error: unknown, final: boolean) => void;
} {
  const failures: Failure[] = [];
  return {
    failures,
    onFailure: (job, error, final) =>
      failures.push({
        id: job.id,
        status: job.status,
        attempts: job.attempts,
        final,
        message: error instanceof Error ? error.message : String(error),
      }),
  };
}

const cases: ConformanceCase<JobQueueHarness>[] = [
  {
    name: 'a job reads back as it was added, then as it completed; an unknown id is undefined',
    async run(h) {
      const queue = await h.open();
      const before = Date.now();
      const added = await queue.add('fast', { text: 'café ☕', n: [1, 2] }, { priority: 7, maxAttempts: 4 });
      const after = Date.now();
      assert.equal(added.queue, 'fast');
      assert.equal(added.status, 'queued');
      assert.equal(added.priority, 7);
      assert.deepEqual(added.payload, { text: 'café ☕', n: [1, 2] });
      assert.equal(added.result, null);
      assert.equal(added.error, null);
      assert.equal(added.attempts, 0);
      assert.equal(added.maxAttempts, 4);
      assert.equal(added.progress, null);
      assert.ok(added.createdAt >= before && added.createdAt <= after);
      assert.equal(added.startedAt, null);
      assert.equal(added.finishedAt, null);
      assert.equal(added.cancelRequested, false);
      assert.deepEqual(await queue.get(added.id), added);
      assert.equal(await queue.get('no-such-job'), undefined);

      queue.work({ concurrency: { fast: 1 }, handler: async (job) => ({ echo: job.payload }) });
      const done = await statusBecomes(queue, added.id, 'completed');
      assert.deepEqual(done.result, { echo: { text: 'café ☕', n: [1, 2] } });
      assert.equal(done.attempts, 1);
      assert.equal(done.error, null);
      assert.ok(done.startedAt !== null && done.startedAt >= done.createdAt);
      assert.ok(done.finishedAt !== null && done.finishedAt >= done.startedAt);
      assert.deepEqual(await (await h.open()).get(added.id), done, 'another instance reads the same job');
    },
  },
  {
    name: 'adding an id that exists, in any queue and from any instance, returns the existing job unchanged',
    async run(h) {
      const [a, b] = [await h.open(), await h.open()];
      const first = await a.add('fast', { v: 1 }, { id: 'job_idem-1', priority: 1 });
      assert.equal(first.id, 'job_idem-1');
      assert.deepEqual(await a.add('fast', { v: 2 }, { id: 'job_idem-1', priority: 9 }), first);
      assert.deepEqual(await b.add('heavy', { v: 3 }, { id: 'job_idem-1' }), first);
      assert.equal((await b.counts('heavy')).counts.queued, 0);
      assert.equal((await b.counts('fast')).counts.queued, 1);
    },
  },
  {
    name: 'ids, priorities, attempts and queues outside the rules are refused, by every backend alike',
    async run(h) {
      const queue = await h.open();
      for (const id of ['has:colon', '12345', '', 'x'.repeat(129), 'spa ce']) {
        await assert.rejects(queue.add('fast', null, { id }), TypeError, `id ${JSON.stringify(id)}`);
      }
      await assert.rejects(queue.add('fast', null, { priority: 1.5 }), RangeError);
      await assert.rejects(queue.add('fast', null, { priority: 1_000_001 }), RangeError);
      await assert.rejects(queue.add('fast', null, { maxAttempts: 0 }), RangeError);
      await assert.rejects(queue.add('fast', null, { backoffMs: -1 }), RangeError);
      await assert.rejects(queue.add('slow' as QueueName, null), TypeError);
      assert.throws(() => queue.work({ concurrency: { fast: 0 }, handler: async () => {} }), RangeError);
      assert.equal((await queue.add('fast', null, { id: 'job_Ok-1.2~3' })).id, 'job_Ok-1.2~3');
      assert.equal((await queue.counts('fast')).counts.queued, 1, 'nothing refused was stored');
    },
  },
  {
    name: 'a higher priority runs first',
    async run(h) {
      const queue = await h.open();
      const jobs: Array<[string, number]> = [
        ['zero', 0],
        ['five-a', 5],
        ['minus-three', -3],
        ['five-b', 5],
        ['ten', 10],
        ['top', 1_000_000],
        ['bottom', -1_000_000],
      ];
      for (const [label, priority] of jobs) await queue.add('fast', label, { priority });
      const ran: unknown[] = [];
      queue.work({ concurrency: { fast: 1 }, handler: async (job) => ran.push(job.payload) });
      await eventually('all ran', () => ran.length === jobs.length);
      assert.deepEqual(ran, ['top', 'ten', 'five-a', 'five-b', 'zero', 'minus-three', 'bottom']);
    },
  },
  {
    name: 'within a priority, the oldest runs first (jobs added within one millisecond too)',
    async run(h) {
      const queue = await h.open();
      for (let i = 0; i < 12; i++) await queue.add('fast', i, { priority: 2 });
      const ran: unknown[] = [];
      queue.work({ concurrency: { fast: 1 }, handler: async (job) => ran.push(job.payload) });
      await eventually('all ran', () => ran.length === 12);
      assert.deepEqual(ran, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    },
  },
  {
    name: 'a failing job is retried after a doubling backoff, then completes; attempts are counted',
    async run(h) {
      const queue = await h.open();
      const backoffMs = 40;
      const started: number[] = [];
      const failed: number[] = [];
      const log = failureLog();
      queue.work({
        concurrency: { fast: 2 },
        onFailure: log.onFailure,
        handler: async (job, context) => {
          started.push(Date.now());
          assert.equal(context.attempt, started.length);
          assert.equal(job.attempts, context.attempt);
          if (context.attempt < 3) {
            failed.push(Date.now());
            throw new Error(`attempt ${context.attempt} failed`);
          }
          return 'third time';
        },
      });
      const job = await queue.add('fast', null, { maxAttempts: 5, backoffMs });
      const done = await statusBecomes(queue, job.id, 'completed', SLOW);
      assert.equal(done.result, 'third time');
      assert.equal(done.attempts, 3);
      assert.equal(done.error, 'attempt 2 failed', 'the last failure is kept');
      // A lower bound only: a retry cannot start before its backoff has passed.
      assert.ok(started[1]! - failed[0]! >= backoffMs, `first retry after ${started[1]! - failed[0]!} ms`);
      assert.ok(
        started[2]! - failed[1]! >= 2 * backoffMs,
        `second retry after ${started[2]! - failed[1]!} ms`,
      );
      await eventually('both failures told', () => log.failures.length === 2);
      assert.deepEqual(log.failures, [
        { id: job.id, status: 'queued', attempts: 1, final: false, message: 'attempt 1 failed' },
        { id: job.id, status: 'queued', attempts: 2, final: false, message: 'attempt 2 failed' },
      ]);
    },
  },
  {
    name: "a RetryLaterError's wait replaces the backoff (a webhook's retry schedule)",
    async run(h) {
      const queue = await h.open();
      const started: number[] = [];
      const failed: number[] = [];
      queue.work({
        concurrency: { fast: 1 },
        handler: async (_job, context) => {
          started.push(Date.now());
          failed.push(Date.now());
          // First: no wait at all, though the backoff is a minute; then at least 60 ms.
          if (context.attempt === 1) throw new RetryLaterError('now', 0);
          if (context.attempt === 2) throw new RetryLaterError('soon', 60);
          return 'done';
        },
      });
      const job = await queue.add('fast', null, { maxAttempts: 3, backoffMs: 60_000 });
      const done = await statusBecomes(queue, job.id, 'completed', SLOW);
      assert.equal(done.attempts, 3);
      assert.ok(started[2]! - failed[1]! >= 60, `second retry after ${started[2]! - failed[1]!} ms`);
    },
  },
  {
    name: 'the retention purge removes finished jobs finished before the cutoff, and nothing else',
    async run(h) {
      const queue = await h.open();
      queue.work({
        concurrency: { fast: 1 },
        handler: async (job) => {
          if (job.payload === 'fail') throw new PermanentJobError('no');
          return 'ok';
        },
      });
      const done = await queue.add('fast', 'ok');
      const failed = await queue.add('fast', 'fail');
      const finished = [
        await statusBecomes(queue, done.id, 'completed', SLOW),
        await statusBecomes(queue, failed.id, 'failed', SLOW),
      ];
      const waiting = await queue.add('heavy', 'nobody works heavy');
      // A cutoff before they finished removes nothing.
      assert.equal(
        await queue.purgeFinished(done.createdAt - 1),
        0,
        `cutoff ${done.createdAt - 1}, finished at ${finished.map((job) => job.finishedAt).join(' and ')}`,
      );
      assert.equal((await queue.get(done.id))?.status, 'completed');
      assert.equal(await queue.purgeFinished(Date.now() + 1_000), 2);
      assert.equal(await queue.get(done.id), undefined);
      assert.equal(await queue.get(failed.id), undefined);
      assert.equal((await queue.get(waiting.id))?.status, 'queued');
      // The id is free again once purged.
      const again = await queue.add('fast', 'ok', { id: done.id });
      assert.equal(again.status, 'queued');
    },
  },
  {
    name: 'a job whose attempts run out is failed (dead-lettered), its error kept',
    async run(h) {
      const queue = await h.open();
      let runs = 0;
      const log = failureLog();
      queue.work({
        concurrency: { fast: 1 },
        onFailure: log.onFailure,
        handler: async () => {
          runs++;
          throw new Error(`no luck ${runs}`);
        },
      });
      const job = await queue.add('fast', null, { maxAttempts: 2, backoffMs: 1 });
      const dead = await statusBecomes(queue, job.id, 'failed', SLOW);
      assert.equal(dead.attempts, 2);
      assert.equal(dead.error, 'no luck 2');
      assert.ok(dead.finishedAt !== null);
      assert.equal(dead.result, null);
      await eventually('both failures told', () => log.failures.length === 2);
      assert.deepEqual(
        log.failures.map((f) => [f.status, f.final]),
        [
          ['queued', false],
          ['failed', true],
        ],
      );
      assert.equal(runs, 2);
    },
  },
  {
    name: 'a PermanentJobError fails the job at once, whatever attempts remain',
    async run(h) {
      const queue = await h.open();
      const log = failureLog();
      queue.work({
        concurrency: { fast: 1 },
        onFailure: log.onFailure,
        handler: async () => {
          throw new PermanentJobError('the input can never work');
        },
      });
      const job = await queue.add('fast', null, { maxAttempts: 5, backoffMs: 1 });
      const dead = await statusBecomes(queue, job.id, 'failed');
      assert.equal(dead.attempts, 1);
      assert.equal(dead.error, 'the input can never work');
      await eventually('the failure told', () => log.failures.length === 1);
      assert.deepEqual(log.failures[0], {
        id: job.id,
        status: 'failed',
        attempts: 1,
        final: true,
        message: 'the input can never work',
      });
    },
  },
  {
    name: 'a queued job is cancelled at once and never runs; a finished job is left as it is',
    async run(h) {
      const queue = await h.open();
      const doomed = await queue.add('heavy', { doomed: true });
      const cancelled = await queue.cancel(doomed.id);
      assert.equal(cancelled?.status, 'cancelled');
      assert.ok(cancelled?.finishedAt !== null);
      assert.equal(cancelled?.cancelRequested, false);
      assert.deepEqual(cancelled?.payload, { doomed: true });
      assert.deepEqual(await queue.get(doomed.id), cancelled);
      assert.equal(await queue.cancel('no-such-job'), undefined);

      const ran: unknown[] = [];
      queue.work({ concurrency: { heavy: 1 }, handler: async (job) => ran.push(job.payload) });
      const next = await queue.add('heavy', { doomed: false });
      const done = await statusBecomes(queue, next.id, 'completed');
      assert.deepEqual(ran, [{ doomed: false }], 'the cancelled job never ran');
      assert.deepEqual(await queue.cancel(next.id), done);
      assert.deepEqual(await queue.cancel(doomed.id), cancelled);
    },
  },
  {
    name: "cancelling an active job (from another instance) aborts its handler's signal; it ends cancelled",
    async run(h) {
      const [a, b] = [await h.open(), await h.open()];
      const started = Promise.withResolvers<void>();
      let reason: unknown;
      const log = failureLog();
      a.work({
        concurrency: { fast: 1 },
        onFailure: log.onFailure,
        handler: async (_job, context) => {
          started.resolve();
          reason = await aborted(context);
          throw reason;
        },
      });
      const job = await a.add('fast', null, { maxAttempts: 3 });
      await started.promise;
      const asked = await b.cancel(job.id);
      // Marked, and read back after: its worker may have ended it in between.
      assert.ok(asked?.status === 'active' || asked?.status === 'cancelled', asked?.status);
      assert.equal(asked?.cancelRequested, true);
      const ended = await statusBecomes(b, job.id, 'cancelled');
      assert.equal(ended.cancelRequested, true);
      assert.equal(ended.attempts, 1, 'not retried');
      assert.ok(ended.finishedAt !== null);
      assert.ok(reason instanceof Error && reason.name === 'AbortError', String(reason));
      await eventually('the failure told', () => log.failures.length === 1);
      assert.deepEqual(
        log.failures.map((f) => [f.status, f.final]),
        [['cancelled', true]],
      );
      await eventually('counted as cancelled', async () => {
        const { counts } = await b.counts('fast');
        return counts.cancelled === 1 && counts.failed === 0 && counts.active === 0;
      });
    },
  },
  {
    name: 'never more jobs of a queue run at once than its concurrency',
    async run(h) {
      const queue = await h.open();
      const limits: Partial<Record<QueueName, number>> = { fast: 3, heavy: 1 };
      const running = { fast: new Set<() => void>(), heavy: new Set<() => void>() };
      const peak = { fast: 0, heavy: 0 };
      queue.work({
        concurrency: limits,
        handler: async (job, context) => {
          const q = job.queue as 'fast' | 'heavy';
          const gate = Promise.withResolvers<void>();
          running[q].add(gate.resolve);
          peak[q] = Math.max(peak[q], running[q].size);
          // The abort ends a failed case's jobs when the harness closes the queue.
          await Promise.race([gate.promise, aborted(context)]);
          running[q].delete(gate.resolve);
        },
      });
      const remaining = { fast: 9, heavy: 3 };
      for (let i = 0; i < remaining.fast; i++) await queue.add('fast', i);
      for (let i = 0; i < remaining.heavy; i++) await queue.add('heavy', i);
      while (remaining.fast + remaining.heavy > 0) {
        // Each queue fills exactly its slots (more would break the bound, fewer the check)...
        await eventually('the slots filled', () =>
          (['fast', 'heavy'] as const).every((q) => running[q].size === Math.min(limits[q]!, remaining[q])),
        );
        // ...then one job of each ends, and the next must take its slot.
        for (const q of ['fast', 'heavy'] as const) {
          const [release] = running[q];
          if (release === undefined) continue;
          running[q].delete(release);
          release();
          remaining[q]--;
        }
      }
      assert.deepEqual(peak, { fast: 3, heavy: 1 });
    },
  },
  {
    name: 'a queue no worker works is not taken',
    async run(h) {
      const queue = await h.open();
      const waiting = await queue.add('heavy', 'not yet');
      const quick = await queue.add('fast', 'now');
      const ran: unknown[] = [];
      queue.work({ concurrency: { fast: 2 }, handler: async (job) => ran.push(job.payload) });
      await statusBecomes(queue, quick.id, 'completed');
      assert.deepEqual(ran, ['now']);
      const still = await queue.get(waiting.id);
      assert.equal(still?.status, 'queued');
      assert.equal(still?.attempts, 0);
    },
  },
  {
    name: 'two workers on one store (two processes) never run one job twice',
    async run(h) {
      const [a, b] = [await h.open(), await h.open()];
      const runs = new Map<string, number>();
      const handler = async (job: JobRecord) => {
        runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
      };
      a.work({ concurrency: { fast: 4 }, handler });
      b.work({ concurrency: { fast: 4 }, handler });
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) ids.push((await (i % 2 === 0 ? a : b).add('fast', i)).id);
      await eventually(
        'all completed',
        async () => (await a.counts('fast')).counts.completed === ids.length,
        SLOW,
      );
      assert.deepEqual(
        ids.filter((id) => runs.get(id) !== 1),
        [],
        'each job ran exactly once',
      );
      for (const id of ids) assert.equal((await a.get(id))?.attempts, 1);
    },
  },
  {
    name: 'a worker that dies mid-job: once its lease lapses the job is run again, and completes once',
    async run(h) {
      const [a, b] = [await h.open({ shortLease: true }), await h.open({ shortLease: true })];
      const startedOnA = Promise.withResolvers<void>();
      const neverEnds = Promise.withResolvers<string>();
      const runs: string[] = [];
      const dying = a.work({
        concurrency: { fast: 1 },
        handler: async () => {
          runs.push('a');
          startedOnA.resolve();
          return neverEnds.promise;
        },
      });
      try {
        const job = await a.add('fast', null, { maxAttempts: 3 });
        await startedOnA.promise;
        assert.ok(dying[abandonWorker], 'the backend has the test hook');
        await dying[abandonWorker]();
        b.work({
          concurrency: { fast: 1 },
          handler: async () => {
            runs.push('b');
            return 'from b';
          },
        });
        const done = await statusBecomes(b, job.id, 'completed', SLOW);
        assert.equal(done.result, 'from b');
        assert.equal(done.attempts, 2, "the dead worker's start counts");
        assert.deepEqual(runs, ['a', 'b']);
      } finally {
        // The "killed" handler ends now; nothing it returns may be stored.
        neverEnds.resolve('from a');
      }
    },
  },
  {
    name: 'progress the handler reports is visible through get, during and after the run',
    async run(h) {
      const queue = await h.open();
      const release = Promise.withResolvers<void>();
      queue.work({
        concurrency: { fast: 1 },
        handler: async (_job, context) => {
          await context.reportProgress({ done: 1, of: 3 });
          await release.promise;
          await context.reportProgress({ done: 3, of: 3 });
          return 'ok';
        },
      });
      const job = await queue.add('fast', null);
      await eventually('progress visible', async () => {
        const seen = await queue.get(job.id);
        return seen?.status === 'active' && JSON.stringify(seen.progress) === '{"done":1,"of":3}';
      });
      release.resolve();
      const done = await statusBecomes(queue, job.id, 'completed');
      assert.deepEqual(done.progress, { done: 3, of: 3 });
    },
  },
  {
    name: 'counts per status and the age of the oldest queued job, per queue',
    async run(h) {
      const queue = await h.open();
      const oldest = await queue.add('heavy', 'd');
      await queue.add('heavy', 'e');
      const cancelled = await queue.add('fast', 'c');
      await queue.cancel(cancelled.id);
      const hold = Promise.withResolvers<void>();
      const worker = queue.work({
        concurrency: { fast: 2 },
        handler: async (job) => {
          if (job.payload === 'b') throw new Error('b fails');
          if (job.payload === 'h') await hold.promise;
        },
      });
      try {
        const held = await queue.add('fast', 'h');
        const ok = await queue.add('fast', 'a');
        const bad = await queue.add('fast', 'b', { maxAttempts: 1 });
        await statusBecomes(queue, held.id, 'active');
        await statusBecomes(queue, ok.id, 'completed');
        await statusBecomes(queue, bad.id, 'failed');
        assert.deepEqual((await queue.counts('fast')).counts, {
          queued: 0,
          active: 1,
          completed: 1,
          failed: 1,
          cancelled: 1,
        });
        assert.equal((await queue.counts('fast')).oldestQueuedMs, 0, 'none queued');

        const before = Date.now();
        const heavy = await queue.counts('heavy');
        const after = Date.now();
        assert.deepEqual(heavy.counts, { queued: 2, active: 0, completed: 0, failed: 0, cancelled: 0 });
        assert.ok(
          heavy.oldestQueuedMs >= before - oldest.createdAt &&
            heavy.oldestQueuedMs <= after - oldest.createdAt,
          `oldest ${heavy.oldestQueuedMs} ms, created ${before - oldest.createdAt}..${after - oldest.createdAt} ms ago`,
        );
        assert.deepEqual(await queue.counts('embeddings'), {
          counts: { queued: 0, active: 0, completed: 0, failed: 0, cancelled: 0 },
          oldestQueuedMs: 0,
        });
      } finally {
        hold.resolve();
        await worker.close();
      }
    },
  },
  {
    name: 'close() waits for a running job to finish and be stored, without aborting it within the grace',
    async run(h) {
      const queue = await h.open();
      const started = Promise.withResolvers<void>();
      const release = Promise.withResolvers<void>();
      let closed = false;
      let closedBeforeDone: boolean | undefined;
      let abortedInside: boolean | undefined;
      const worker = queue.work({
        concurrency: { fast: 1 },
        handler: async (_job, context) => {
          started.resolve();
          await release.promise;
          closedBeforeDone = closed;
          abortedInside = context.signal.aborted;
          return 'finished';
        },
      });
      const job = await queue.add('fast', null);
      await started.promise;
      const closing = worker.close(60_000).then(() => {
        closed = true;
      });
      release.resolve();
      await closing;
      assert.equal(closedBeforeDone, false);
      assert.equal(abortedInside, false);
      const done = await queue.get(job.id);
      assert.equal(done?.status, 'completed', 'stored before close resolved');
      assert.equal(done?.result, 'finished');
    },
  },
  {
    name: 'close() aborts the signal of a handler that outlives the grace; its attempt fails and is retried later',
    async run(h) {
      const queue = await h.open();
      const started = Promise.withResolvers<void>();
      const worker = queue.work({
        concurrency: { fast: 1 },
        handler: async (_job, context) => {
          started.resolve();
          throw await aborted(context);
        },
      });
      const job = await queue.add('fast', null, { maxAttempts: 2, backoffMs: 0 });
      await started.promise;
      await worker.close(0);
      const after = await queue.get(job.id);
      assert.equal(after?.status, 'queued');
      assert.equal(after?.attempts, 1);
      assert.equal(after?.error, 'the worker is closing');
    },
  },
];

export function jobQueueConformance(name: string, factory: () => Promise<JobQueueHarness>): void {
  runConformance(`job queue conformance: ${name}`, cases, factory);
}
