/**
 * The gateway's dependency checks, registered on its HealthChecker and run in
 * the background (src/observability/health-checker.ts): the database (primary
 * and each read replica), Redis, providers, circuit breakers and job queues.
 * The process checks (disk, memory, event loop, CPU) are in
 * src/observability/system-checks.ts.
 *
 * Providers are judged from what the gateway already knows, at no cost to
 * anyone: their targets' circuit breakers and the outcomes of the attempts
 * since the last run (read from the upstream-duration histogram, so the
 * request path does nothing extra), plus an unbilled probe where the adapter
 * has one (listing models). A completion is never sent to find out.
 */
import { QUEUE_NAMES } from '../jobs/job-queue.ts';
import type { CheckResult, HealthChecker, HealthStatus } from '../observability/health-checker.ts';
import { reason } from '../observability/health-checker.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { ProviderAdapter } from '../providers/types.ts';
import type { Resilience } from '../resilience/resilience.ts';
import { pingRedis, type RedisConnection } from '../store/redis.ts';
import type { Database } from '../store/sql.ts';
import type { JobServices } from './jobs.ts';

export interface DependencyCheckParts {
  database: Database;
  redis: RedisConnection | undefined;
  providers: ReadonlyMap<string, ProviderAdapter>;
  resilience: Resilience;
  metrics: GatewayMetrics;
  jobs: JobServices;
  /** A provider probe slower than this is a failed one (`timed out`). */
  probeTimeoutMs: number;
  /** Probe each provider this often (the first time this long after start); 0: never. */
  probeIntervalMs: number;
}

/** A job waiting longer than this makes the queues degraded (workers missing or too few). */
const QUEUE_WAIT_DEGRADED_MS = 5 * 60_000;
/** Attempts in one interval before a provider's failure share says anything. */
const MIN_ATTEMPTS = 5;

const elapsed = (start: number) => Math.round((performance.now() - start) * 10) / 10;

export function registerDependencyChecks(checker: HealthChecker, parts: DependencyCheckParts): void {
  const { database, redis, providers, resilience, metrics, jobs, probeTimeoutMs, probeIntervalMs } = parts;

  // The primary decides: without it no key, no ledger row. A replica down only degrades (reads fall back).
  checker.register(
    'database',
    async (signal): Promise<CheckResult> => {
      const start = performance.now();
      const replicas = await Promise.all(
        (database.replicas ?? []).map(async (replica) => {
          const began = performance.now();
          try {
            await replica.ping(signal);
            return {
              name: replica.description,
              status: 'healthy' as HealthStatus,
              latency_ms: elapsed(began),
            };
          } catch (error) {
            return { name: replica.description, status: 'unhealthy' as HealthStatus, error: reason(error) };
          }
        }),
      );
      let primary: CheckResult;
      try {
        await database.ping(signal);
        primary = { status: 'healthy', latency_ms: elapsed(start) };
      } catch (error) {
        primary = { status: 'unhealthy', error: reason(error) };
      }
      const status: HealthStatus =
        primary.status === 'unhealthy'
          ? 'unhealthy'
          : replicas.some((r) => r.status !== 'healthy')
            ? 'degraded'
            : 'healthy';
      return { status, kind: database.dialect, primary, replicas };
    },
    { critical: true },
  );

  if (redis !== undefined) {
    // Optional (caches, shared limits and breakers fall back to this instance): unhealthy only degrades.
    checker.register('redis', async (signal): Promise<CheckResult> => {
      const state = redis.status;
      // Reconnecting, connecting, closed: known without asking, and a PING would wait in the offline queue.
      if (state !== 'ready') return { status: 'unhealthy', connection: state, error: `redis ${state}` };
      const start = performance.now();
      await pingRedis(redis, signal);
      return { status: 'healthy', connection: state, latency_ms: elapsed(start) };
    });
  }

  let lastCounts = new Map<string, { ok: number; failed: number }>();
  // Probes run less often than the checks: an upstream is asked about at most once per interval.
  // Until the first, a provider is judged by its traffic and breakers alone (as configured: usable).
  let probedAt = Date.now();
  const probes = new Map<string, CheckResult>();
  const probe = async (provider: ProviderAdapter, signal: AbortSignal): Promise<CheckResult> => {
    if (provider.check === undefined) return { status: 'healthy', result: 'not supported' };
    const start = performance.now();
    // Each probe has its own deadline, inside the check's: one hung upstream is reported as that.
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(probeTimeoutMs)]);
    try {
      await abortable(provider.check(deadline), deadline);
      return { status: 'healthy', result: 'ok', latency_ms: elapsed(start), at: new Date().toISOString() };
    } catch (error) {
      const at = new Date().toISOString();
      return deadline.aborted
        ? { status: 'unhealthy', result: 'timed out', error: `no answer in ${probeTimeoutMs} ms`, at }
        : { status: 'unhealthy', result: 'failed', error: reason(error), at };
    }
  };
  checker.register(
    'providers',
    async (signal): Promise<CheckResult> => {
      const traffic = await attemptTally(metrics);
      const since = lastCounts;
      lastCounts = traffic;
      const targets = resilience.list();
      const probeNow = probeIntervalMs > 0 && Date.now() - probedAt >= probeIntervalMs;
      if (probeNow) {
        probedAt = Date.now();
        await Promise.all(
          [...providers].map(async ([name, provider]) => probes.set(name, await probe(provider, signal))),
        );
      }
      const entries = [...providers.keys()].map((name): [string, CheckResult] => {
        const own = targets.filter((t) => t.provider === name);
        const open = own.filter((t) => t.state === 'open' || t.state === 'isolated').length;
        const now = traffic.get(name) ?? { ok: 0, failed: 0 };
        const before = since.get(name) ?? { ok: 0, failed: 0 };
        const ok = now.ok - before.ok;
        const failed = now.failed - before.failed;
        const lastProbe: CheckResult =
          probes.get(name) ??
          (probeIntervalMs === 0
            ? { status: 'healthy', result: 'off' }
            : { status: 'healthy', result: 'not yet probed' });
        let status: HealthStatus = 'healthy';
        if (own.length > 0 && open === own.length) status = 'unhealthy';
        else if (lastProbe.status === 'unhealthy') status = 'unhealthy';
        else if (open > 0 || (ok + failed >= MIN_ATTEMPTS && failed > ok)) status = 'degraded';
        return [
          name,
          {
            status,
            probe: lastProbe,
            targets: own.length,
            breakers_open: open,
            attempts_ok: ok,
            attempts_failed: failed,
          },
        ];
      });
      const all = entries.map(([, c]) => c.status);
      // Every provider down: nothing can be served. Some: the others carry the traffic.
      const status: HealthStatus =
        all.length > 0 && all.every((s) => s === 'unhealthy')
          ? 'unhealthy'
          : all.some((s) => s !== 'healthy')
            ? 'degraded'
            : 'healthy';
      return { status, providers: Object.fromEntries(entries) };
    },
    { critical: true, timeoutMs: probeTimeoutMs * 2 },
  );

  checker.register(
    'circuit_breakers',
    (): CheckResult => {
      const counts = { closed: 0, half_open: 0, open: 0, isolated: 0 };
      for (const target of resilience.list()) counts[target.state]++;
      const status: HealthStatus = !resilience.anyTargetAvailable()
        ? 'unhealthy'
        : counts.open + counts.half_open + counts.isolated > 0
          ? 'degraded'
          : 'healthy';
      return { status, ...counts };
    },
    { critical: true },
  );

  checker.register('queues', async (): Promise<CheckResult> => {
    const queues: Record<string, unknown> = {};
    let status: HealthStatus = 'healthy';
    for (const name of QUEUE_NAMES) {
      const { counts, oldestQueuedMs } = await jobs.queue.counts(name);
      queues[name] = { ...counts, oldest_queued_s: Math.round(oldestQueuedMs / 1000) };
      if (oldestQueuedMs > QUEUE_WAIT_DEGRADED_MS) status = 'degraded';
    }
    return { status, backend: jobs.queue.backend, queues };
  });
}

/** `work`, or a rejection as soon as `signal` aborts (a probe that ignores its signal still ends on time). */
function abortable(work: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Upstream attempts so far per provider, ok and failed, from the upstream-duration histogram's counts. */
async function attemptTally(metrics: GatewayMetrics): Promise<Map<string, { ok: number; failed: number }>> {
  const tally = new Map<string, { ok: number; failed: number }>();
  const { values } = await metrics.upstreamDuration.get();
  for (const v of values) {
    if (!(v as { metricName?: string }).metricName?.endsWith('_count')) continue;
    const provider = String(v.labels['provider']);
    const entry = tally.get(provider) ?? { ok: 0, failed: 0 };
    // Client disconnects and lost hedges say nothing about the provider.
    const outcome = String(v.labels['outcome']);
    if (outcome === 'ok') entry.ok += v.value;
    else if (outcome !== 'client_closed' && outcome !== 'hedge_lost') entry.failed += v.value;
    tally.set(provider, entry);
  }
  return tally;
}
