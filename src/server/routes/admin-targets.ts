/**
 * Admin API: routing targets. Master key only (checked per route).
 *
 * - `GET /admin/targets`: every model's targets with role, tier, weight,
 *   active flag, availability, latency averages and capacity use.
 * - `POST /admin/targets/{id}/deactivate` and `/activate`: take a target out
 *   of rotation (or back in) for new requests, at once, in this instance.
 *
 * Target ids contain `/`: URL-encoded (`/admin/targets/openai%2Fgpt-4o-mini/deactivate`)
 * or raw, read as every admin path with a target id is (../target-path.ts).
 */

import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../../core/errors.ts';
import { printable } from '../../util/printable.ts';
import { requireMaster } from '../auth.ts';
import type { GatewayContext } from '../context.ts';
import { targetAction } from '../target-path.ts';
import { auditOf } from './admin-audit.ts';

const ACTIONS = ['activate', 'deactivate'] as const;

export function registerAdminTargetRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const onRequest = requireMaster(gw.keys);

  app.get('/admin/targets', { onRequest }, async () => ({ object: 'list', data: gw.router.snapshot() }));

  app.post('/admin/targets/*', { onRequest }, async (request) => {
    const { id, action } = targetAction(request, ACTIONS);
    const known = action === 'activate' ? gw.router.activate(id) : gw.router.deactivate(id);
    if (!known) throw new GatewayError('not_found', `No target '${printable(id, 200)}' in any model`);
    request.log.info({ targetId: printable(id, 200), action }, 'routing target changed');
    await auditOf(gw, request, { action: `target.${action}`, targetType: 'target', targetId: id });
    return { id, active: action === 'activate' };
  });
}
