/**
 * Starts this process's job worker: the queues it works, each with its
 * configured concurrency, running server/jobs.ts's handler with requests sent
 * through this process's own app, measured (observability/job-metrics.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.ts';
import { GatewayError } from '../core/errors.ts';
import { type JobHandler, PermanentJobError, type QueueName, type QueueWorker } from '../jobs/job-queue.ts';
import { registerJobMetrics } from '../observability/job-metrics.ts';
import { signWebhook, webhookKey } from '../webhooks/signature.ts';
import { closeWebhookConnections, deliverOnce } from '../webhooks/webhook-delivery.ts';
import { WebhookPolicy } from '../webhooks/webhook-url-policy.ts';
import type { GatewayContext } from './context.ts';
import { internalExecutor } from './internal-requests.ts';
import { jobHandler } from './jobs.ts';

export function startJobWorker(
  gw: GatewayContext,
  app: FastifyInstance,
  queues: readonly QueueName[],
): QueueWorker {
  const { config, logger } = gw;
  const metrics = registerJobMetrics(gw.metrics.registry, {
    names: queues,
    counts: (name) => gw.jobs.queue.counts(name as QueueName),
  });
  const deliver = gw.webhookDelivery?.deliver;
  const schedule = config.webhooks?.retry_schedule_s ?? [];
  const handle = jobHandler({
    services: gw.jobs,
    execute: internalExecutor(app, gw.keys),
    deliver:
      deliver === undefined
        ? undefined
        : async (url, delivery) => {
            const outcome = await deliver(url, delivery);
            metrics.webhookAttempt(outcome.ok);
            return outcome;
          },
    webhookScheduleMs: schedule.map((seconds) => seconds * 1000),
  });
  const measured: JobHandler = async (job, context) => {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const result = await handle(job, context);
      metrics.jobEnded(job.queue, context.signal.aborted ? 'cancelled' : 'completed', seconds());
      return result;
    } catch (error) {
      const final = error instanceof PermanentJobError || context.attempt >= job.maxAttempts;
      metrics.jobEnded(job.queue, final ? 'failed' : 'retried', seconds());
      logger.warn(
        { jobId: job.id, queue: job.queue, attempt: context.attempt, final, err: (error as Error).message },
        final ? 'job failed' : 'job failed; it will be retried',
      );
      throw error;
    }
  };
  const concurrency: Partial<Record<QueueName, number>> = {};
  for (const name of queues) concurrency[name] = config.jobs.queues[name].concurrency;
  logger.info({ queues, backend: gw.jobs.queue.backend }, 'job worker started');
  const worker = gw.jobs.queue.work({ concurrency, handler: measured });
  const stopSweeping = sweepExpired(gw);
  return {
    close: (graceMs) => {
      stopSweeping();
      return worker.close(graceMs);
    },
  };
}

/**
 * The retention sweep (`jobs.retention_days`): finished jobs and batches older
 * than it, and files past their expiry, are removed a minute after start and
 * then hourly. Every worker sweeps; a delete twice is a no-op.
 */
function sweepExpired(gw: GatewayContext): () => void {
  const retentionMs = gw.config.jobs.retention_days * 86_400_000;
  const sweep = async () => {
    const now = Date.now();
    try {
      const jobs = await gw.jobs.queue.purgeFinished(now - retentionMs);
      const batches = await gw.jobs.batches.deleteFinishedBefore(now - retentionMs);
      const files = await gw.jobs.files.deleteExpired(now);
      if (jobs + batches + files > 0)
        gw.logger.info({ jobs, batches, files }, 'retention sweep removed expired work');
    } catch (error) {
      gw.logger.warn(
        { err: (error as Error).message },
        'retention sweep failed; it runs again within the hour',
      );
    }
  };
  const first = setTimeout(sweep, 60_000);
  const hourly = setInterval(sweep, 3_600_000);
  first.unref();
  hourly.unref();
  return () => {
    clearTimeout(first);
    clearInterval(hourly);
  };
}

/** Client-given webhook URLs (`POST /v1/jobs`'s `webhook_url`): checked by the policy, delivered signed. */
export function jobWebhooks(
  config: NonNullable<Config['webhooks']>,
): NonNullable<GatewayContext['webhookDelivery']> {
  const policy = new WebhookPolicy({ allowlist: config.allowlist });
  const key = webhookKey(config.secret);
  return {
    checkUrl(url) {
      try {
        return policy.checkUrl(url).href;
      } catch (error) {
        throw new GatewayError('invalid_request', `webhook_url: ${(error as Error).message}`, {
          param: 'webhook_url',
        });
      }
    },
    async deliver(url, delivery) {
      const timestamp = Math.floor(Date.now() / 1000);
      const body = JSON.stringify({
        type: delivery.type,
        timestamp: new Date().toISOString(),
        data: delivery.data,
      });
      return deliverOnce(
        url,
        { id: delivery.id, timestamp, body, signature: signWebhook(key, delivery.id, timestamp, body) },
        { policy },
      );
    },
    close: () => closeWebhookConnections(policy),
  };
}
