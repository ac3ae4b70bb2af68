/**
 * Health endpoints, unauthenticated and secret-free:
 * - /health/live: the process is up and its event loop turns.
 * - /health/ready: it should receive traffic (config loaded, database
 *   reachable, at least one provider usable, not draining, and not every
 *   target's circuit breaker open).
 * - /health and /health/deep: the detail behind that answer, plus Redis (from a
 *   cached check: see health-checks.ts); deep also lists every target's
 *   breaker state (target ids are config names, not secrets).
 *
 * Readiness never touches Redis: it is not part of the decision.
 */
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../context.ts';
import { CachedRedisCheck, type Check, withTimeout } from '../health-checks.ts';

const drainingOk = { servesWhileDraining: true };

export function registerHealthRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const redisCheck = gw.redis ? new CachedRedisCheck(gw.redis) : undefined;

  // Readiness leaves Redis out: it does not decide readiness, and every instance
  // failing its probe over a Redis outage would take the whole fleet out.
  const checks = async (deep: boolean, withRedis: boolean) => {
    // All at once: one slow upstream must not add its timeout to everyone else's.
    const [database, redis, providerChecks] = await Promise.all([
      withTimeout((signal) => gw.database.ping(signal), 1_000),
      withRedis ? redisCheck?.check() : undefined,
      Promise.all(
        [...gw.providers].map(
          async ([name, provider]): Promise<[string, Check]> => [
            name,
            // Shallow checks trust configuration; deep ones ask each upstream (no tokens spent).
            deep && provider.check ? await withTimeout((s) => provider.check!(s), 5_000) : { ok: true },
          ],
        ),
      ),
    ]);
    const providers: Record<string, Check> = Object.fromEntries(providerChecks);
    const providerUsable = Object.values(providers).some((p) => p.ok);
    const ready = !gw.state.draining && database.ok && providerUsable && gw.resilience.anyTargetAvailable();
    return { ready, database, redis, providers };
  };

  const summary = async (deep: boolean) => {
    const c = await checks(deep, true);
    return {
      status: gw.state.draining
        ? 'draining'
        : c.ready
          ? c.redis && !c.redis.ok
            ? 'degraded'
            : 'ok'
          : 'unavailable',
      uptime_s: Math.round((Date.now() - gw.state.startedAt) / 1000),
      time: new Date().toISOString(),
      database: { ...c.database, kind: gw.database.dialect },
      ...(c.redis ? { redis: c.redis } : {}),
      providers: c.providers,
      ...(deep
        ? {
            targets: gw.resilience.list().map((t) => ({
              ...t,
              provider_ready: c.providers[t.provider]?.ok ?? false,
            })),
          }
        : {}),
      models: gw.models.size,
      ledger: gw.ledger.stats,
      ready: c.ready,
    };
  };

  app.get('/health/live', { config: drainingOk }, async () => ({ status: 'ok' }));

  app.get('/health/ready', { config: drainingOk }, async (_request, reply) => {
    const c = await checks(false, false);
    reply.code(c.ready ? 200 : 503);
    return { status: c.ready ? 'ready' : gw.state.draining ? 'draining' : 'unavailable' };
  });

  app.get('/health', { config: drainingOk }, async (_request, reply) => {
    const body = await summary(false);
    reply.code(body.ready ? 200 : 503);
    return body;
  });

  app.get('/health/deep', { config: drainingOk }, async (_request, reply) => {
    const body = await summary(true);
    reply.code(body.ready ? 200 : 503);
    return body;
  });
}
