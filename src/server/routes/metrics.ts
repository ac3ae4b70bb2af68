import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../context.ts';

/** Prometheus text format. No secrets and no raw client values in any label. */
export function registerMetricsRoute(app: FastifyInstance, gw: GatewayContext): void {
  app.get('/metrics', { config: { servesWhileDraining: true } }, async (_request, reply) => {
    reply.header('content-type', gw.metrics.registry.contentType);
    return gw.metrics.render();
  });
}
