/**
 * OpenAI's Batch API: `POST /v1/batches`, `GET /v1/batches[/:id]`,
 * `POST /v1/batches/:id/cancel`. A batch is a job on the `heavy` queue
 * (jobs/batch-runner.ts runs it); a key sees only its own batches.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { listPage } from '../../api/openai/list-page.ts';
import { GatewayError } from '../../core/errors.ts';
import type { BatchRecord } from '../../jobs/batch-store.ts';
import { requireKey } from '../auth.ts';
import type { GatewayContext } from '../context.ts';
import { assertJobEndpoint, type BatchJob } from '../jobs.ts';
import { parsedBody } from './admin-body.ts';
import { listQuery, ownerOf } from './job-routes-shared.ts';

const BATCH_ID = /^batch_[a-f0-9]{24}$/;
/** OpenAI's only window; the batch's lines that have not run by then end as `batch_expired`. */
const COMPLETION_WINDOWS: Record<string, number> = { '24h': 86_400_000 };

const createBatchBody = z.strictObject({
  input_file_id: z.string().min(1).max(100),
  endpoint: z.string().max(100),
  completion_window: z.string().max(20),
  metadata: z.record(z.string().max(64), z.string().max(512)).nullish(),
});

/** A batch as OpenAI's API shows it (times in seconds). */
export function batchObject(batch: BatchRecord): Record<string, unknown> {
  const s = (ms: number | null) => (ms === null ? null : Math.floor(ms / 1000));
  return {
    id: batch.id,
    object: 'batch',
    endpoint: batch.endpoint,
    errors: batch.errors === null ? null : JSON.parse(batch.errors),
    input_file_id: batch.input_file_id,
    completion_window: batch.completion_window,
    status: batch.status,
    output_file_id: batch.output_file_id,
    error_file_id: batch.error_file_id,
    created_at: s(batch.created_at),
    in_progress_at: s(batch.in_progress_at),
    expires_at: s(batch.expires_at),
    finalizing_at: s(batch.finalizing_at),
    completed_at: s(batch.completed_at),
    failed_at: s(batch.failed_at),
    expired_at: s(batch.expired_at),
    cancelling_at: s(batch.cancelling_at),
    cancelled_at: s(batch.cancelled_at),
    request_counts: { total: batch.total, completed: batch.completed, failed: batch.failed },
    metadata: batch.metadata === null ? null : JSON.parse(batch.metadata),
  };
}

export function registerBatchRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const jobs = gw.jobs;
  const onRequest = requireKey(gw.keys);

  app.post('/v1/batches', { onRequest }, async (request) => {
    const input = parsedBody(createBatchBody, request.body ?? {});
    assertJobEndpoint(input.endpoint);
    const window = COMPLETION_WINDOWS[input.completion_window];
    if (window === undefined) {
      throw new GatewayError('invalid_request', 'completion_window must be 24h', {
        param: 'completion_window',
      });
    }
    if (input.metadata && Object.keys(input.metadata).length > 16) {
      throw new GatewayError('invalid_request', 'metadata holds at most 16 pairs', { param: 'metadata' });
    }
    const keyId = ownerOf(request);
    const file = await jobs.files.get(keyId, input.input_file_id);
    if (file === undefined || file.purpose !== 'batch') {
      throw new GatewayError('not_found', `No such File object: ${input.input_file_id}`, {
        param: 'input_file_id',
      });
    }
    const batch = await jobs.batches.create({
      keyId,
      endpoint: input.endpoint,
      inputFileId: file.id,
      completionWindow: input.completion_window,
      metadata: input.metadata ?? null,
      expiresAt: Date.now() + window,
    });
    // A batch outlives many worker deaths: its lines' results are kept, so each attempt resumes.
    await jobs.queue.add('heavy', { kind: 'batch', batchId: batch.id } satisfies BatchJob, {
      id: batch.id,
      maxAttempts: 20,
      backoffMs: jobs.config.backoff_ms,
    });
    request.log.info({ batchId: batch.id, fileId: file.id, lines: file.lines }, 'batch created');
    return batchObject(batch);
  });

  app.get('/v1/batches', { onRequest }, async (request) => {
    const query = listQuery(request.query);
    const batches = await jobs.batches.list(ownerOf(request), { after: query.after, limit: query.limit + 1 });
    return listPage(batches, query.limit, batchObject);
  });

  app.get('/v1/batches/:id', { onRequest }, async (request) => batchObject(await ownBatch(request)));

  app.post('/v1/batches/:id/cancel', { onRequest }, async (request) => {
    const batch = await ownBatch(request);
    const cancelling = await jobs.batches.transition(batch.id, ['validating', 'in_progress'], {
      status: 'cancelling',
      cancelling_at: Date.now(),
    });
    if (cancelling === undefined) return batchObject((await jobs.batches.get(batch.id))!);
    // Not started yet: no worker will finish it, so it ends here. Running: its worker
    // sees `cancelling`, stops sending lines, and writes the files of what it did.
    const job = await jobs.queue.cancel(batch.id);
    if (job === undefined || job.status === 'cancelled') {
      const cancelled = await jobs.batches.transition(batch.id, ['cancelling'], {
        status: 'cancelled',
        cancelled_at: Date.now(),
      });
      if (cancelled !== undefined) return batchObject(cancelled);
    }
    return batchObject((await jobs.batches.get(batch.id))!);
  });

  async function ownBatch(request: FastifyRequest): Promise<BatchRecord> {
    const id = (request.params as { id: string }).id;
    const batch = BATCH_ID.test(id) ? await jobs.batches.get(id, ownerOf(request)) : undefined;
    if (batch === undefined) throw new GatewayError('not_found', `No such Batch object: ${id.slice(0, 64)}`);
    return batch;
  }
}
