/**
 * Health endpoints, unauthenticated and secret-free (Kubernetes-style probes):
 * - /health/live: the process is up and its event loop turns; nothing else.
 * - /health/ready: it should receive traffic: not draining, the database
 *   reachable, some provider usable, and not every target's breaker open.
 * - /health/deep: every check with its status (healthy, degraded, unhealthy)
 *   and details, the overall status, and every target's breaker.
 * - /health: the short summary (ok, degraded, unavailable, draining).
 *
 * None of them does I/O: they serve the background checker's last results
 * (src/observability/health-checker.ts, checks in ../health-checks.ts), with
 * what is known in memory right now laid over them (draining, breakers, the
 * Redis connection's state). A probe storm costs the database and Redis nothing.
 * Readiness leaves Redis out: it does not decide readiness, and every instance
 * failing its probe over a Redis outage would take the whole fleet out.
 */
import type { FastifyInstance } from 'fastify';
import type { CheckResult, HealthSnapshot } from '../../observability/health-checker.ts';
import type { GatewayContext } from '../context.ts';

const drainingOk = { servesWhileDraining: true };

export function registerHealthRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const checker = gw.health;

  /** The last results with the in-memory facts laid over them; waits only for the very first run. */
  const current = async (): Promise<HealthSnapshot> => {
    if (checker.snapshot.checked_at === null) await checker.run();
    const live: Record<string, CheckResult> = {};
    const redisCheck = checker.snapshot.checks['redis'];
    // A dropped connection is known at once; the last PING may predate it.
    if (gw.redis !== undefined && redisCheck !== undefined && gw.redis.status !== 'ready') {
      live['redis'] = { status: 'unhealthy', connection: gw.redis.status, error: `redis ${gw.redis.status}` };
    }
    return checker.withCurrent(live);
  };

  const isReady = (snapshot: HealthSnapshot): boolean =>
    !gw.state.draining &&
    snapshot.checks['database']?.status !== 'unhealthy' &&
    snapshot.checks['providers']?.status !== 'unhealthy' &&
    gw.resilience.anyTargetAvailable();

  app.get('/health/live', { config: drainingOk }, async () => ({ status: 'ok' }));

  app.get('/health/ready', { config: drainingOk }, async (_request, reply) => {
    const ready = isReady(await current());
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : gw.state.draining ? 'draining' : 'unavailable' };
  });

  app.get('/health', { config: drainingOk }, async (_request, reply) => {
    const snapshot = await current();
    const ready = isReady(snapshot);
    const redis = snapshot.checks['redis'];
    const providers = snapshot.checks['providers']?.['providers'] as Record<string, CheckResult> | undefined;
    reply.code(ready ? 200 : 503);
    return {
      status: gw.state.draining
        ? 'draining'
        : !ready
          ? 'unavailable'
          : redis && redis.status !== 'healthy'
            ? 'degraded'
            : 'ok',
      uptime_s: Math.round((Date.now() - gw.state.startedAt) / 1000),
      time: new Date().toISOString(),
      checked_at: snapshot.checked_at,
      database: { ...okOf(snapshot.checks['database']), kind: gw.database.dialect },
      ...(redis ? { redis: okOf(redis) } : {}),
      providers: Object.fromEntries([...gw.providers.keys()].map((name) => [name, okOf(providers?.[name])])),
      models: gw.models.size,
      ledger: gw.ledger.stats,
      ready,
    };
  });

  app.get('/health/deep', { config: drainingOk }, async (_request, reply) => {
    const snapshot = await current();
    const ready = isReady(snapshot);
    const providers = snapshot.checks['providers']?.['providers'] as Record<string, CheckResult> | undefined;
    reply.code(ready ? 200 : 503);
    return {
      status: gw.state.draining ? 'unhealthy' : snapshot.status,
      ready,
      draining: gw.state.draining,
      uptime_s: Math.round((Date.now() - gw.state.startedAt) / 1000),
      checked_at: snapshot.checked_at,
      checks: snapshot.checks,
      // Breaker states as they are now (in memory); target ids are config names, not secrets.
      targets: gw.resilience.list().map((t) => ({
        ...t,
        provider_ready: (providers?.[t.provider]?.status ?? 'healthy') !== 'unhealthy',
      })),
      ledger: gw.ledger.stats,
    };
  });
}

/** The short form of a check: ok, and the reason when it is not healthy. */
function okOf(check: CheckResult | undefined): { ok: boolean; detail?: string } {
  if (check === undefined || check.status === 'healthy') return { ok: true };
  const detail = check['error'] ?? (check['probe'] as CheckResult | undefined)?.['error'] ?? check.status;
  return check.status === 'degraded'
    ? { ok: true, detail: String(detail) }
    : { ok: false, detail: String(detail) };
}
