/**
 * The gateway's jobs: what each kind of queued work does, and the parts the
 * routes share (the queue, files, batches). Three kinds:
 *
 * - `request`: an async completion or embedding (`POST /v1/jobs`), sent
 *   through the gateway's own pipeline as the key that queued it;
 * - `batch`: an OpenAI batch (`POST /v1/batches`), run by BatchRunner;
 * - `webhook`: a signed delivery of a finished job to its `webhook_url`,
 *   retried by the queue under one `webhook-id`, each attempt kept on the job.
 */
import { randomBytes } from 'node:crypto';
import type { JobsConfig } from '../config/jobs-schema.ts';
import { GatewayError } from '../core/errors.ts';
import { BATCH_ENDPOINTS, BatchRunner, type RequestExecutor } from '../jobs/batch-runner.ts';
import { BatchStore } from '../jobs/batch-store.ts';
import { FileStore } from '../jobs/file-store.ts';
import {
  type JobContext,
  type JobHandler,
  type JobQueue,
  type JobRecord,
  PermanentJobError,
  type QueueName,
  RetryLaterError,
} from '../jobs/job-queue.ts';

export interface RequestJob {
  kind: 'request';
  keyId: string;
  endpoint: string;
  body: unknown;
  webhookUrl?: string | undefined;
}

export interface BatchJob {
  kind: 'batch';
  batchId: string;
}

export interface WebhookJob {
  kind: 'webhook';
  url: string;
  /** The job whose end it reports. */
  jobId: string;
  /** The Standard Webhooks `webhook-id`: the same on every attempt. */
  deliveryId: string;
  event: { type: string; data: unknown };
}

export type JobPayload = RequestJob | BatchJob | WebhookJob;

/** One try at delivering a webhook, as the job shows it. */
export interface WebhookAttempt {
  at: number;
  ok: boolean;
  status?: number | undefined;
  error?: string | undefined;
}

/** Sends one signed delivery; never throws (a failure is in the result). */
export type DeliverWebhook = (
  url: string,
  delivery: { id: string; type: string; data: unknown },
) => Promise<{
  ok: boolean;
  status?: number | undefined;
  error?: string | undefined;
  refused?: boolean | undefined;
}>;

/** A completed request job's answer: what the gateway answered, as a batch output line has it. */
export interface RequestJobResult {
  status_code: number;
  body: unknown;
}

export function newJobId(): string {
  return `job_${randomBytes(12).toString('hex')}`;
}

/** The webhook job of a request job (one per job: adding it twice is a no-op). */
export function webhookJobId(jobId: string): string {
  return `whk_${jobId}`;
}

/** The queue a request job goes to: embeddings to their own, long generations to `heavy`. */
export function queueFor(endpoint: string, body: Record<string, unknown>): QueueName {
  if (endpoint === '/v1/embeddings') return 'embeddings';
  const cap = body.max_completion_tokens ?? body.max_tokens;
  return typeof cap === 'number' && cap > 4_096 ? 'heavy' : 'fast';
}

/** A job's or a batch's `endpoint`: one this gateway can run (400 naming `endpoint` otherwise). */
export function assertJobEndpoint(endpoint: string): void {
  if (!BATCH_ENDPOINTS.has(endpoint)) {
    throw new GatewayError('invalid_request', `endpoint must be one of ${[...BATCH_ENDPOINTS].join(', ')}`, {
      param: 'endpoint',
    });
  }
}

export interface JobServices {
  readonly queue: JobQueue;
  readonly files: FileStore;
  readonly batches: BatchStore;
  readonly config: JobsConfig;
}

export interface JobHandlerDeps {
  services: JobServices;
  execute: RequestExecutor;
  deliver: DeliverWebhook | undefined;
  /** The waits before each webhook retry (ms): `webhooks.retry_schedule_s`; one attempt more than its length. */
  webhookScheduleMs: readonly number[];
}

/** The handler every worker runs: dispatches on the job's kind. */
export function jobHandler(deps: JobHandlerDeps): JobHandler {
  const { services } = deps;
  const runner = new BatchRunner({
    batches: services.batches,
    files: services.files,
    execute: deps.execute,
    lineConcurrency: services.config.batches.line_concurrency,
    maxLines: services.config.batches.max_lines,
    retentionMs: services.config.retention_days * 86_400_000,
  });
  return async (job, context) => {
    const payload = job.payload as JobPayload;
    switch (payload.kind) {
      case 'request':
        return runRequestJob(job, payload, deps, context);
      case 'batch':
        return runner.run(payload.batchId, context);
      case 'webhook': {
        if (deps.deliver === undefined) throw new PermanentJobError('webhooks are not configured');
        const outcome = await deps.deliver(payload.url, {
          id: payload.deliveryId,
          type: payload.event.type,
          data: payload.event.data,
        });
        const previous = Array.isArray(job.progress) ? (job.progress as WebhookAttempt[]) : [];
        await context.reportProgress([
          ...previous,
          { at: Date.now(), ok: outcome.ok, status: outcome.status, error: outcome.error },
        ]);
        if (outcome.refused === true) throw new PermanentJobError(`webhook refused: ${outcome.error}`);
        if (!outcome.ok) {
          const message = `webhook delivery failed: ${outcome.error ?? `HTTP ${outcome.status}`}`;
          // The next try waits as `webhooks.retry_schedule_s` says for this attempt.
          const waitMs = deps.webhookScheduleMs[context.attempt - 1];
          throw waitMs === undefined ? new Error(message) : new RetryLaterError(message, waitMs);
        }
        return { delivered: true };
      }
      default:
        throw new PermanentJobError('unknown job kind');
    }
  };
}

async function runRequestJob(
  job: JobRecord,
  payload: RequestJob,
  deps: JobHandlerDeps,
  context: JobContext,
): Promise<RequestJobResult> {
  const response = await deps.execute({
    keyId: payload.keyId,
    endpoint: payload.endpoint,
    body: payload.body,
    // The job's id (and attempt) bills it. Each attempt is its own request with
    // its own ledger rows: a retry after an upstream 5xx or 429 is another call
    // the provider bills, so it must not land on the failed attempt's rows.
    requestId: context.attempt === 1 ? job.id : `${job.id}.${context.attempt}`,
    signal: context.signal,
  });
  // Throttled or the upstreams failed: the queue retries it with backoff.
  if (response.status === 429 || response.status >= 500) {
    if (job.attempts < job.maxAttempts) throw new Error(`the gateway answered ${response.status}`);
  }
  const result: RequestJobResult = { status_code: response.status, body: response.body };
  if (payload.webhookUrl !== undefined && deps.deliver !== undefined) {
    await deps.services.queue.add(
      'fast',
      {
        kind: 'webhook',
        url: payload.webhookUrl,
        jobId: job.id,
        deliveryId: `msg_${job.id}`,
        event: {
          type: response.status < 400 ? 'job.completed' : 'job.failed',
          data: { id: job.id, object: 'job', status: response.status < 400 ? 'completed' : 'failed', result },
        },
      } satisfies WebhookJob,
      {
        id: webhookJobId(job.id),
        maxAttempts: deps.webhookScheduleMs.length + 1,
      },
    );
  }
  return result;
}

/** What `GET /v1/jobs/:id` shows of a request job. */
export function jobView(job: JobRecord, webhook: JobRecord | undefined): Record<string, unknown> {
  const payload = job.payload as RequestJob;
  const result = job.status === 'completed' ? (job.result as RequestJobResult) : null;
  // A job the gateway answered with an error is done, but it did not succeed.
  const status = result !== null && result.status_code >= 400 ? 'failed' : job.status;
  return {
    id: job.id,
    object: 'job',
    status,
    endpoint: payload.endpoint,
    queue: job.queue,
    created_at: Math.floor(job.createdAt / 1000),
    started_at: job.startedAt === null ? null : Math.floor(job.startedAt / 1000),
    finished_at: job.finishedAt === null ? null : Math.floor(job.finishedAt / 1000),
    attempts: job.attempts,
    result,
    error: result === null && job.error !== null && job.status !== 'queued' ? { message: job.error } : null,
    webhook:
      payload.webhookUrl === undefined
        ? null
        : {
            url: payload.webhookUrl,
            status:
              webhook === undefined || webhook.status === 'queued' || webhook.status === 'active'
                ? 'pending'
                : webhook.status === 'completed'
                  ? 'delivered'
                  : 'failed',
            attempts: Array.isArray(webhook?.progress) ? webhook.progress : [],
          },
  };
}

export function createJobServices(
  queue: JobQueue,
  database: ConstructorParameters<typeof FileStore>[0],
  config: JobsConfig,
): JobServices {
  return { queue, files: new FileStore(database), batches: new BatchStore(database), config };
}
