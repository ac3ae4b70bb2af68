/**
 * The health checks as metrics, read from the checker's last results at scrape
 * time (no check runs for a scrape): what the alert rules in deploy/prometheus
 * fire on for "all providers down" and "Redis disconnected".
 */
import type { Cluster, Redis } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';
import type { CheckResult, HealthChecker, HealthStatus } from './health-checker.ts';

const VALUE: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 };

export function registerHealthMetrics(
  registry: Registry,
  checker: HealthChecker,
  redis?: Redis | Cluster,
): void {
  const registers = [registry];
  new Gauge({
    name: 'switchyard_health_check_status',
    help: 'Each background health check: 0 healthy, 1 degraded, 2 unhealthy (check: database, redis, disk, memory, event_loop, cpu, providers, circuit_breakers, queues, or a custom one)',
    aggregator: 'max', // under --workers: the worst worker
    labelNames: ['check'],
    registers,
    collect() {
      this.reset();
      for (const [check, result] of Object.entries(checker.snapshot.checks)) {
        // A dropped Redis connection is known now; the last PING may predate it.
        const status =
          check === 'redis' && redis !== undefined && redis.status !== 'ready' ? 'unhealthy' : result.status;
        this.set({ check }, VALUE[status]);
      }
    },
  });
  new Gauge({
    name: 'switchyard_provider_up',
    help: 'Each provider: 1 usable (healthy or degraded), 0 unhealthy (its probe failed or every target breaker is open)',
    aggregator: 'min', // under --workers: down if any worker finds it down
    labelNames: ['provider'],
    registers,
    collect() {
      this.reset();
      const providers = checker.snapshot.checks['providers']?.['providers'] as
        | Record<string, CheckResult>
        | undefined;
      for (const [provider, result] of Object.entries(providers ?? {})) {
        this.set({ provider }, result.status === 'unhealthy' ? 0 : 1);
      }
    },
  });
  if (redis !== undefined) {
    new Gauge({
      name: 'switchyard_redis_connected',
      help: "1 while this instance's Redis connection is ready, else 0 (connecting, reconnecting, closed)",
      aggregator: 'min', // under --workers: 1 only if every worker is connected
      registers,
      collect() {
        this.set(redis.status === 'ready' ? 1 : 0);
      },
    });
  }
}
