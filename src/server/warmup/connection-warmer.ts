/**
 * Pre-warming upstream connection pools (`warmup.connections`): at start,
 * each HTTP provider's pool opens N connections, one per concurrent unbilled
 * request that spends no tokens (the adapter's readiness probe: listing
 * models), so the first real requests after a deploy skip the TCP and TLS
 * handshakes (one round trip for TCP, one or two more for TLS, each tens of
 * milliseconds to a remote provider). Then, every `keep_warm_interval_ms`,
 * the same N requests go again: they reuse the idle connections (resetting
 * both sides' idle timers) and open again any that a side closed meanwhile.
 *
 * undici has no "open a connection" call for an HTTP pool (its `connect()` is
 * the CONNECT method), hence requests; with pipelining 1, N requests sent at
 * once need N connections. Pools are per connect timeout (src/providers/http.ts),
 * so each provider is warmed once per connect timeout its models use.
 */
import type { ProviderAdapter } from '../../providers/types.ts';
import type { ModelRoute } from '../../routing/model-table.ts';

export interface WarmPool {
  provider: ProviderAdapter;
  connectMs: number;
}

export interface WarmRound {
  /** Successful probes over every pool (each holds a connection open, or reused one). */
  ok: number;
  failed: number;
}

export interface WarmerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** The pools real requests use: every provider a model routes to that has a probe, per connect timeout. */
export function poolsToWarm(models: ReadonlyMap<string, ModelRoute>): WarmPool[] {
  const pools = new Map<string, WarmPool>();
  for (const route of models.values()) {
    for (const target of route.targets) {
      if (target.provider.check === undefined) continue;
      const key = `${target.provider.name}\0${route.timeouts.connectMs}`;
      if (!pools.has(key)) pools.set(key, { provider: target.provider, connectMs: route.timeouts.connectMs });
    }
  }
  return [...pools.values()];
}

export class ConnectionWarmer {
  readonly #pools: readonly WarmPool[];
  readonly #connections: number;
  readonly #intervalMs: number;
  readonly #logger: WarmerLogger;
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<WarmRound> | undefined;
  /** Failures already said, by pool: a provider down stays one warning until it recovers. */
  readonly #failing = new Set<string>();

  constructor(
    pools: readonly WarmPool[],
    options: { connections: number; intervalMs: number; logger: WarmerLogger },
  ) {
    this.#pools = pools;
    this.#connections = options.connections;
    this.#intervalMs = options.intervalMs;
    this.#logger = options.logger;
  }

  /** The first round (each probe is bounded by the probe timeouts: 5 s), then the keep-warm timer. */
  async start(): Promise<WarmRound> {
    const round = await this.round();
    this.#logger.info(
      { pools: this.#pools.length, connectionsEach: this.#connections, ...round },
      'upstream connections warmed',
    );
    if (this.#intervalMs > 0 && !this.#abort.signal.aborted) {
      this.#timer = setInterval(() => void this.round(), this.#intervalMs);
      // Warmth is a nicety: it never keeps a process alive.
      this.#timer.unref();
    }
    return round;
  }

  /** One round over every pool; a round still running is joined, not doubled. */
  round(): Promise<WarmRound> {
    this.#running ??= this.#round().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #round(): Promise<WarmRound> {
    const signal = this.#abort.signal;
    const results = await Promise.all(
      this.#pools.map(async (pool) => {
        const key = `${pool.provider.name}/${pool.connectMs}`;
        const probes = await Promise.allSettled(
          Array.from({ length: this.#connections }, () =>
            pool.provider.check!(signal, { connectMs: pool.connectMs }),
          ),
        );
        const failed = probes.filter((p) => p.status === 'rejected');
        if (failed.length > 0 && !signal.aborted && !this.#failing.has(key)) {
          this.#failing.add(key);
          const reason = (failed[0] as PromiseRejectedResult).reason as { code?: unknown };
          this.#logger.warn(
            { provider: pool.provider.name, failed: failed.length, code: reason?.code ?? 'unknown' },
            'could not warm upstream connections; requests will open their own',
          );
        } else if (failed.length === 0) {
          this.#failing.delete(key);
        }
        return { ok: probes.length - failed.length, failed: failed.length };
      }),
    );
    return results.reduce((sum, r) => ({ ok: sum.ok + r.ok, failed: sum.failed + r.failed }), {
      ok: 0,
      failed: 0,
    });
  }

  /** Stops the timer and abandons a round in flight (before the providers' pools close). */
  close(): void {
    clearInterval(this.#timer);
    this.#abort.abort();
  }
}
