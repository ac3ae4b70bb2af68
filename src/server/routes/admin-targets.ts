/**
 * Admin API: routing targets. Master key only (checked per route).
 *
 * - `GET /admin/targets`: every model's targets with role, tier, weight,
 *   active flag, availability, latency averages and capacity use.
 * - `POST /admin/targets/{id}/deactivate` and `/activate`: take a target out
 *   of rotation (or back in) for new requests, at once, in this instance.
 *
 * Target ids are `<provider>/<upstream model>` and so contain `/` (upstream
 * model ids may contain more). Send the id URL-encoded
 * (`/admin/targets/openai%2Fgpt-4o-mini/deactivate`); the raw form works too,
 * since the action is always the last path segment.
 */

import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../../core/errors.ts';
import { printable } from '../../util/printable.ts';
import { requireMaster } from '../auth.ts';
import type { GatewayContext } from '../context.ts';

const ACTION = /^(.+)\/(activate|deactivate)$/s;

export function registerAdminTargetRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const onRequest = requireMaster(gw.keys);

  app.get('/admin/targets', { onRequest }, async () => ({ object: 'list', data: gw.router.snapshot() }));

  app.post('/admin/targets/*', { onRequest }, async (request) => {
    // The router has decoded the path once (%2F → /); decoding again would misread '%'.
    const rest = (request.params as { '*': string })['*'];
    const match = ACTION.exec(rest);
    if (!match) {
      throw new GatewayError('not_found', 'Expected POST /admin/targets/{id}/activate or /deactivate');
    }
    const id = match[1]!;
    const action = match[2] as 'activate' | 'deactivate';
    const known = action === 'activate' ? gw.router.activate(id) : gw.router.deactivate(id);
    if (!known) throw new GatewayError('not_found', `No target '${printable(id, 200)}' in any model`);
    request.log.info({ targetId: printable(id, 200), action }, 'routing target changed');
    return { id, active: action === 'activate' };
  });
}
