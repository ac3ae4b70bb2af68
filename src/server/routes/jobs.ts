/**
 * Async jobs: `POST /v1/jobs` queues a chat or embeddings request (202 with
 * the job's id), `GET /v1/jobs/:id` shows its status and answer,
 * `POST /v1/jobs/:id/cancel` cancels it. A worker sends the request through
 * the gateway's own pipeline as the key that queued it (server/jobs.ts); with
 * `webhook_url`, the answer is also delivered there, signed.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { GatewayError } from '../../core/errors.ts';
import type { JobRecord } from '../../jobs/job-queue.ts';
import { requireKey } from '../auth.ts';
import type { GatewayContext } from '../context.ts';
import { assertJobEndpoint, jobView, newJobId, queueFor, type RequestJob, webhookJobId } from '../jobs.ts';
import { parsedBody } from './admin-body.ts';
import { ownerOf } from './job-routes-shared.ts';

const JOB_ID = /^job_[a-f0-9]{24}$/;

const createJobBody = z.strictObject({
  endpoint: z.string().max(100).default('/v1/chat/completions'),
  request: z.record(z.string(), z.unknown()),
  webhook_url: z.string().max(2_048).optional(),
  /** Overrides the queue the endpoint would choose. */
  queue: z.enum(['fast', 'heavy']).optional(),
  /** Higher runs first. */
  priority: z.number().int().min(-100).max(100).optional(),
});

export function registerJobRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const jobs = gw.jobs;
  const onRequest = requireKey(gw.keys);

  app.post('/v1/jobs', { onRequest }, async (request, reply) => {
    const input = parsedBody(createJobBody, request.body ?? {});
    assertJobEndpoint(input.endpoint);
    if (typeof input.request.model !== 'string') {
      throw new GatewayError('invalid_request', 'request.model is required', { param: 'request.model' });
    }
    if (input.request.stream === true) {
      throw new GatewayError(
        'invalid_request',
        'A job cannot stream: its answer is read with GET /v1/jobs/{id}',
        {
          param: 'request.stream',
        },
      );
    }
    let webhookUrl: string | undefined;
    if (input.webhook_url !== undefined) {
      if (gw.webhookDelivery === undefined) {
        throw new GatewayError(
          'invalid_request',
          'Webhooks are not configured on this gateway (webhooks.secret)',
          {
            param: 'webhook_url',
          },
        );
      }
      webhookUrl = gw.webhookDelivery.checkUrl(input.webhook_url);
    }
    const id = newJobId();
    const payload: RequestJob = {
      kind: 'request',
      keyId: ownerOf(request),
      endpoint: input.endpoint,
      body: input.request,
      ...(webhookUrl !== undefined ? { webhookUrl } : {}),
    };
    const job = await jobs.queue.add(input.queue ?? queueFor(input.endpoint, input.request), payload, {
      id,
      priority: input.priority ?? 0,
      maxAttempts: jobs.config.max_attempts,
      backoffMs: jobs.config.backoff_ms,
    });
    request.log.info({ jobId: id, queue: job.queue }, 'job queued');
    reply.code(202);
    return { id: job.id, object: 'job', status: job.status, created_at: Math.floor(job.createdAt / 1000) };
  });

  app.get('/v1/jobs/:id', { onRequest }, async (request) => view(await ownJob(request)));

  app.post('/v1/jobs/:id/cancel', { onRequest }, async (request) => {
    const job = await ownJob(request);
    return view((await jobs.queue.cancel(job.id)) ?? job);
  });

  async function view(job: JobRecord): Promise<Record<string, unknown>> {
    const webhook =
      (job.payload as RequestJob).webhookUrl === undefined
        ? undefined
        : await jobs.queue.get(webhookJobId(job.id));
    return jobView(job, webhook);
  }

  async function ownJob(request: FastifyRequest): Promise<JobRecord> {
    const id = (request.params as { id: string }).id;
    const job = JOB_ID.test(id) ? await jobs.queue.get(id) : undefined;
    const payload = job?.payload as RequestJob | undefined;
    // Another key's job is as absent as a job that never was.
    if (job === undefined || payload?.kind !== 'request' || payload.keyId !== ownerOf(request)) {
      throw new GatewayError('not_found', `No such job: ${id.slice(0, 64)}`);
    }
    return job;
  }
}
