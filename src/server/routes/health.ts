/**
 * Health endpoints, unauthenticated and secret-free:
 * - /health/live: the process is up and its event loop turns.
 * - /health/ready: it should receive traffic (config loaded, database
 *   reachable, at least one provider usable, not draining, and not every
 *   target's circuit breaker open).
 * - /health and /health/deep: the detail behind that answer; deep also lists
 *   every target's breaker state (target ids are config names, not secrets).
 */
import type { FastifyInstance } from 'fastify';
import { pingRedis } from '../../store/redis.ts';
import type { GatewayContext } from '../context.ts';

interface Check {
  ok: boolean;
  detail?: string;
}

async function withTimeout(work: (signal: AbortSignal) => Promise<void>, ms: number): Promise<Check> {
  const signal = AbortSignal.timeout(ms);
  try {
    await Promise.race([
      work(signal),
      new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('timed out')))),
    ]);
    return { ok: true };
  } catch (error) {
    return { ok: false, detail: error instanceof Error ? error.message.slice(0, 200) : 'failed' };
  }
}

const drainingOk = { servesWhileDraining: true };

export function registerHealthRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const checks = async (deep: boolean) => {
    // All at once: one slow upstream must not add its timeout to everyone else's.
    const [database, redis, providerChecks] = await Promise.all([
      withTimeout((signal) => gw.database.ping(signal), 1_000),
      gw.redis ? withTimeout((signal) => pingRedis(gw.redis!, signal), 1_000) : undefined,
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
    const c = await checks(deep);
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
    const c = await checks(false);
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
