/**
 * The health checker: named checks run together in the background, at an
 * interval, and the last results are what every health endpoint serves.
 *
 * Probes come from load balancers, orchestrators and dashboards, often many a
 * second and all at once; running the checks per probe would turn a probe storm
 * into a storm of database queries, Redis PINGs and upstream calls. Here a
 * probe reads a snapshot: no I/O, whatever the rate.
 *
 * A check answers healthy, degraded (works, but look at it) or unhealthy, with
 * details (numbers and short reasons, never secrets). One that throws or
 * outlasts its deadline is unhealthy with the reason. The overall status is the
 * worst, except that an unhealthy check that is not `critical` (Redis, disk
 * getting full, one provider of several…) only degrades it.
 */

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

export interface CheckResult {
  status: HealthStatus;
  /** Details shown under the check (numbers, states, a short reason). */
  [detail: string]: unknown;
}

export interface HealthCheckOptions {
  /** An unhealthy answer makes the whole instance unhealthy (else degraded). @default false */
  critical?: boolean;
  /** Longer than this and the check is unhealthy (`timed out`). @default the checker's */
  timeoutMs?: number;
}

export type HealthCheck = (signal: AbortSignal) => Promise<CheckResult> | CheckResult;

export interface HealthSnapshot {
  status: HealthStatus;
  /** When the checks last finished (ISO-8601); null before the first run. */
  checked_at: string | null;
  checks: Record<string, CheckResult>;
}

interface Registered {
  check: HealthCheck;
  critical: boolean;
  timeoutMs: number;
}

const RANK: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 };

export class HealthChecker {
  readonly #checks = new Map<string, Registered>();
  #snapshot: HealthSnapshot = { status: 'healthy', checked_at: null, checks: {} };
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<HealthSnapshot> | undefined;
  /** How many times the checks have run (tests count background work with it). */
  runs = 0;
  readonly #defaultTimeoutMs: number;

  /** `timeoutMs`: a check's deadline unless it registers its own. @default 5_000 */
  constructor(options: { timeoutMs?: number } = {}) {
    this.#defaultTimeoutMs = options.timeoutMs ?? 5_000;
  }

  /** Adds (or replaces) a named check; it is part of the next run. */
  register(name: string, check: HealthCheck, options: HealthCheckOptions = {}): void {
    if (!/^[a-z0-9_.:-]{1,64}$/i.test(name))
      throw new Error(`health check name ${name}: expected [a-z0-9_.:-]`);
    this.#checks.set(name, {
      check,
      critical: options.critical ?? false,
      timeoutMs: options.timeoutMs ?? this.#defaultTimeoutMs,
    });
  }

  unregister(name: string): boolean {
    return this.#checks.delete(name);
  }

  /** The last results, as served (no I/O). */
  get snapshot(): HealthSnapshot {
    return this.#snapshot;
  }

  /** Runs every check once (concurrent callers share the run); resolves with the new snapshot. */
  run(): Promise<HealthSnapshot> {
    this.#running ??= this.#runAll().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Runs now, then every `intervalMs` until `stop()`; the timer never keeps the process alive. */
  async start(intervalMs: number): Promise<HealthSnapshot> {
    this.stop();
    this.#timer = setInterval(() => void this.run(), intervalMs);
    this.#timer.unref();
    return this.run();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * The last snapshot with some checks replaced by what is known now without
   * I/O (a connection's state, a breaker's), the overall status recomputed.
   */
  withCurrent(current: Record<string, CheckResult>): HealthSnapshot {
    const checks = { ...this.#snapshot.checks, ...current };
    return { status: this.#overall(checks), checked_at: this.#snapshot.checked_at, checks };
  }

  #overall(checks: Record<string, CheckResult>): HealthStatus {
    let worst: HealthStatus = 'healthy';
    for (const [name, result] of Object.entries(checks)) {
      const critical = this.#checks.get(name)?.critical ?? false;
      const counted: HealthStatus = result.status === 'unhealthy' && !critical ? 'degraded' : result.status;
      if (RANK[counted] > RANK[worst]) worst = counted;
    }
    return worst;
  }

  async #runAll(): Promise<HealthSnapshot> {
    const entries = [...this.#checks];
    // All at once: one slow dependency must not add its deadline to everyone else's.
    const results = await Promise.all(entries.map(([, registered]) => runOne(registered)));
    const checks: Record<string, CheckResult> = {};
    entries.forEach(([name], i) => {
      checks[name] = results[i]!;
    });
    this.runs++;
    this.#snapshot = { status: this.#overall(checks), checked_at: new Date().toISOString(), checks };
    return this.#snapshot;
  }
}

async function runOne({ check, timeoutMs }: Registered): Promise<CheckResult> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve({ status: 'unhealthy', error: `timed out after ${timeoutMs} ms` });
    }, timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(() => check(controller.signal)), deadline]);
  } catch (error) {
    return { status: 'unhealthy', error: reason(error) };
  } finally {
    clearTimeout(timer);
  }
}

/** A short reason from anything thrown: its message, cut (messages may quote what a dependency said). */
export function reason(error: unknown): string {
  return error instanceof Error ? error.message.slice(0, 200) : 'failed';
}
