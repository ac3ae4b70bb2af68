/**
 * Job queue throughput: jobs per second through each backend with a handler
 * that does nothing, so the number is the queue's own cost per job (take it,
 * run it, store the outcome): the SQL queue on SQLite (the default backend; a
 * temp file) and BullMQ on a private redis-server on loopback. Each with 1
 * and with 4 workers, each worker a queue instance with its own connection
 * (as a worker process has) running `fast` at concurrency 8 (its default).
 * The workers share this process and its one core: 4 workers show what
 * contention for the store costs or gains, not what 4 cores would do.
 *
 * Also the enqueue rate (`add`, 50 in flight) of each backend.
 *
 * Run alone: node bench/jobs.ts [--json]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BullJobQueue } from '../src/jobs/bullmq-job-queue.ts';
import type { JobQueue } from '../src/jobs/job-queue.ts';
import { SqlJobQueue } from '../src/jobs/sql-job-queue.ts';
import { migrate } from '../src/store/migrations.ts';
import { RedisKeys } from '../src/store/redis-keys.ts';
import { type Database, openDatabase } from '../src/store/sql.ts';
import { startRedis } from '../test/helpers/services.ts';

export interface JobsCell {
  workers: number;
  jobsPerSecond: number;
}

export interface JobsBackendBench {
  /** `add` calls per second, 50 in flight. */
  addsPerSecond: number;
  runs: JobsCell[];
}

export interface JobsBench {
  concurrencyPerWorker: number;
  sqlite: JobsBackendBench;
  bullmq: JobsBackendBench;
}

const WORKERS = [1, 4];
const CONCURRENCY = 8;
const ADDS_IN_FLIGHT = 50;
/** Jobs per measurement, sized for two to three seconds each (the whole bench: about 25 s). */
const JOBS = { sqlite: 15_000, bullmq: 20_000 };

/** A fresh store per measurement; `open` gives another instance on it (another process, as far as it knows). */
interface Store {
  open(): Promise<JobQueue>;
  close(): Promise<void>;
}

async function addAll(queue: JobQueue, jobs: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: ADDS_IN_FLIGHT }, async () => {
      while (next < jobs) await queue.add('fast', { n: next++ }, { maxAttempts: 1 });
    }),
  );
  return (jobs / (performance.now() - started)) * 1000;
}

/** Queues `jobs`, then starts `workers` and times them until every handler has run. */
async function measure(store: Store, workers: number, jobs: number): Promise<{ adds: number; runs: number }> {
  const instances = [await store.open()];
  while (instances.length < workers) instances.push(await store.open());
  const adds = await addAll(instances[0]!, jobs);
  let done = 0;
  const all = Promise.withResolvers<void>();
  const handler = async () => {
    if (++done === jobs) all.resolve();
  };
  const started = performance.now();
  for (const queue of instances) queue.work({ concurrency: { fast: CONCURRENCY }, handler });
  await all.promise;
  const runs = (jobs / (performance.now() - started)) * 1000;
  await store.close();
  return { adds, runs };
}

async function benchBackend(jobs: number, fresh: () => Store): Promise<JobsBackendBench> {
  // A short warm-up run (JIT, connections, statement caches) that is not reported.
  await measure(fresh(), 1, Math.min(500, jobs));
  const runs: JobsCell[] = [];
  let adds = 0;
  for (const workers of WORKERS) {
    const result = await measure(fresh(), workers, jobs);
    adds = Math.max(adds, result.adds);
    runs.push({ workers, jobsPerSecond: Math.round(result.runs) });
  }
  return { addsPerSecond: Math.round(adds), runs };
}

function sqliteStore(): Store {
  const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-bench-jobs-'));
  const databases: Database[] = [];
  const queues: JobQueue[] = [];
  return {
    async open() {
      const database = await openDatabase({ url: undefined, dataDir });
      if (databases.length === 0) await migrate(database);
      databases.push(database);
      const queue = new SqlJobQueue(database);
      queues.push(queue);
      return queue;
    },
    async close() {
      await Promise.all(queues.map((queue) => queue.close()));
      await Promise.all(databases.map((database) => database.close()));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

let prefixes = 0;
function bullmqStore(url: string): Store {
  const keys = new RedisKeys(`bench-jobs-${++prefixes}:`);
  const queues: JobQueue[] = [];
  return {
    async open() {
      const queue = new BullJobQueue({ redis: url, keys });
      queues.push(queue);
      return queue;
    },
    async close() {
      await Promise.all(queues.map((queue) => queue.close()));
    },
  };
}

export async function benchJobs(): Promise<JobsBench> {
  const sqlite = await benchBackend(JOBS.sqlite, sqliteStore);
  const server = await startRedis();
  try {
    const bullmq = await benchBackend(JOBS.bullmq, () => bullmqStore(server.url));
    return { concurrencyPerWorker: CONCURRENCY, sqlite, bullmq };
  } finally {
    await server.stop();
  }
}

export function jobsLine(r: JobsBench): string {
  const k = (n: number): string => n.toLocaleString('en-US');
  const runs = (b: JobsBackendBench): string =>
    b.runs.map((c) => `${c.workers} worker${c.workers === 1 ? '' : 's'} ${k(c.jobsPerSecond)}`).join(', ');
  return (
    `job queue jobs/s (no-op handler)     sqlite ${runs(r.sqlite)}; bullmq ${runs(r.bullmq)} ` +
    `(concurrency ${r.concurrencyPerWorker} each; adds/s: sqlite ${k(r.sqlite.addsPerSecond)}, bullmq ${k(r.bullmq.addsPerSecond)})`
  );
}

if (import.meta.main) {
  const started = performance.now();
  const results = await benchJobs();
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(results)}\n`);
  else console.log(jobsLine(results));
  console.error(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
