/**
 * Admin API: the audit log (master key). `GET /admin/audit?limit=&cursor=&action=&target_id=`
 * lists admin actions newest first. `auditOf` is how admin routes record one.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from '../../core/errors.ts';
import type { AuditEntry } from '../audit-log.ts';
import { requireMaster } from '../auth.ts';
import type { GatewayContext } from '../context.ts';

const CURSOR = /^[0-9a-f-]{36}$/;
const ACTION = /^[a-z_]{1,32}\.[a-z_]{1,32}$/;

/** Who made the request: `master`, or the key it authenticated with (by id, never its secret). */
export function actorOf(request: FastifyRequest): string {
  const key = request.key;
  if (key === null) return 'anonymous';
  return key.isMaster ? 'master' : `key:${key.id}`;
}

/** Records an admin action of `request` (who, from where, under which request id). */
export function auditOf(
  gw: GatewayContext,
  request: FastifyRequest,
  entry: Omit<AuditEntry, 'actor' | 'requestId' | 'ip'>,
): Promise<void> {
  return gw.audit.record({ ...entry, actor: actorOf(request), requestId: request.id, ip: request.ip });
}

export function registerAdminAuditRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const onRequest = requireMaster(gw.keys);

  app.get('/admin/audit', { onRequest }, async (request) => {
    const query = request.query as Record<string, unknown>;
    const limit = query['limit'] === undefined ? 100 : Number(query['limit']);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1_000) {
      throw new GatewayError('invalid_request', 'limit: expected an integer from 1 to 1000', {
        param: 'limit',
      });
    }
    const cursor = text(query['cursor'], 'cursor', CURSOR, 'a next_cursor value');
    const action = text(query['action'], 'action', ACTION, 'an action such as key.create');
    const targetId = text(
      query['target_id'],
      'target_id',
      /^[\x21-\x7e]{1,200}$/,
      'a key, team or target id',
    );
    const page = await gw.audit.list({ limit, before: cursor, action, targetId });
    return { object: 'list', ...page };
  });
}

function text(value: unknown, param: string, pattern: RegExp, expected: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new GatewayError('invalid_request', `${param}: expected ${expected}`, { param });
  }
  return value;
}
