/** What the Files, Batch and Jobs routes share: who owns what, and list paging. */
import type { FastifyRequest } from 'fastify';
import { GatewayError } from '../../core/errors.ts';

/** The owner of files, batches and jobs a request makes or reads: its key (the master key's are its own). */
export function ownerOf(request: FastifyRequest): string {
  return request.key!.id;
}

/** OpenAI's list paging: `after` (an id) and `limit` (1–100, default 20). */
export function listQuery(query: unknown): { after: string | undefined; limit: number } {
  const q = (query ?? {}) as Record<string, unknown>;
  const after = typeof q.after === 'string' && q.after !== '' ? q.after.slice(0, 100) : undefined;
  let limit = 20;
  if (q.limit !== undefined) {
    limit = Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw new GatewayError('invalid_request', 'limit must be an integer from 1 to 100', { param: 'limit' });
    }
  }
  return { after, limit };
}
