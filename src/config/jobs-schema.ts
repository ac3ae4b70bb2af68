/**
 * The `jobs` section: async jobs (`POST /v1/jobs`), the Files and Batch API,
 * and the workers that run them (src/jobs/). The queue lives in the SQL store
 * by default (durable, nothing to install) or in Redis through BullMQ.
 */
import { z } from 'zod';

const concurrency = z.number().int().min(1).max(1_000);

const queueSchema = z.strictObject({
  /** Jobs of this queue one worker process runs at once. */
  concurrency,
});

export const jobsSchema = z.strictObject({
  /** `sql`: the gateway's database (default); `redis`: BullMQ on `storage.redis_url`. */
  backend: z.enum(['sql', 'redis']).default('sql'),
  /** Run workers inside `switchyard start` too (`switchyard worker` runs them on their own). */
  workers: z.boolean().default(true),
  queues: z
    .strictObject({
      fast: queueSchema.prefault({ concurrency: 8 }),
      heavy: queueSchema.prefault({ concurrency: 2 }),
      embeddings: queueSchema.prefault({ concurrency: 4 }),
    })
    .prefault({}),
  /** Attempts a job gets in all (a failed webhook delivery follows `webhooks.retry_schedule_s` instead). */
  max_attempts: z.number().int().min(1).max(100).default(3),
  /**
   * How long a running job stays its worker's without a heartbeat: a worker
   * killed mid-job (kill -9) delays its job by about this before another
   * worker takes it up.
   */
  lease_ms: z.number().int().min(300).max(3_600_000).default(30_000),
  /**
   * How often an idle worker of the SQL queue asks the database for due jobs.
   * Jobs queued in the same process, and slots freed by finished jobs, wake it
   * at once; this bounds the wait for jobs other processes queue, and for
   * retries. Each ask is a statement on the gateway's database (SQLite's run
   * on its event loop), so not more often than needed.
   */
  poll_ms: z.number().int().min(10).max(60_000).default(1_000),
  /** The first retry's wait; each next one waits twice as long. */
  backoff_ms: z.number().int().min(0).max(3_600_000).default(1_000),
  /** How long a finished job, batch or uploaded file is kept (days). */
  retention_days: z.number().int().min(1).max(3_650).default(30),
  batches: z
    .strictObject({
      /** Lines of one batch sent through the gateway at once (the key's limits still apply to each). */
      line_concurrency: concurrency.default(8),
      /** The largest file `POST /v1/files` accepts (OpenAI's limit for batch input is 200 MB). */
      max_file_bytes: z
        .number()
        .int()
        .positive()
        .default(200 * 1024 * 1024),
      /** The most lines one batch input file may have (OpenAI's: 50,000). */
      max_lines: z.number().int().positive().default(50_000),
    })
    .prefault({}),
});

export type JobsConfig = z.output<typeof jobsSchema>;
