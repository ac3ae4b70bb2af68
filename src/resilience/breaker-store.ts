/**
 * Where circuit breakers share their state. Each breaker decides locally
 * (counting its own calls); the store spreads the decisions — opened, closed —
 * to every instance and counts half-open probe permits across all of them.
 *
 * The in-memory store serves one process (and several breakers in it); the
 * Redis store (breaker-store-redis.ts) serves a fleet.
 */

/** `isolated`: held open by an operator (admin API) until reset; no probes, no traffic. */
export type BreakerState = 'closed' | 'open' | 'half_open' | 'isolated';

/** A breaker's shared state. `epoch` names one open period (its opening time), so stale permits and successes cannot leak into the next. */
export interface SharedBreakerState {
  state: 'closed' | 'open' | 'isolated';
  epoch: number;
  /** When the open period ends (epoch ms); probes are admitted after it. */
  openUntil: number;
}

export type BreakerStoreListener = (id: string, shared: SharedBreakerState) => void;

/**
 * Whether `next` may replace the stored `current`: never an older epoch, and
 * an isolation is lifted only by a close (the admin reset), so a failure
 * counted elsewhere just before the isolation arrived cannot turn it into an
 * ordinary open period that would admit probes. The Redis store applies the
 * same rule in Lua (src/store/lua/breaker-publish-1.lua); the conformance
 * suite (test/conformance/breaker-store.ts) holds both to the same answers.
 */
export function supersedes(current: SharedBreakerState | undefined, next: SharedBreakerState): boolean {
  if (!current) return true;
  if (current.epoch > next.epoch) return false;
  return current.state !== 'isolated' || next.state === 'closed';
}

export interface BreakerStore {
  /**
   * Publishes a transition to every instance (this one included). When the
   * stored state wins instead (see `supersedes`), it is announced again, so
   * the publisher adopts it.
   */
  publish(id: string, shared: SharedBreakerState): Promise<void>;
  /** The latest published state, if any. */
  read(id: string): Promise<SharedBreakerState | undefined>;
  /** Takes one of `max` probe permits of open period `epoch`; a permit lapses after `ttlMs` if never released (crashed holder). */
  acquireProbe(id: string, epoch: number, max: number, ttlMs: number): Promise<boolean>;
  releaseProbe(id: string, epoch: number): Promise<void>;
  /** Counts one probe success in open period `epoch`; returns the total so far. */
  probeSucceeded(id: string, epoch: number): Promise<number>;
  subscribe(listener: BreakerStoreListener): () => void;
  close(): Promise<void>;
}

interface ProbeCount {
  epoch: number;
  held: number;
  successes: number;
  /** Permits lapse together at this time, as the Redis key's TTL would. */
  expiresAt: number;
}

export class MemoryBreakerStore implements BreakerStore {
  readonly #states = new Map<string, SharedBreakerState>();
  readonly #probes = new Map<string, ProbeCount>();
  readonly #listeners = new Set<BreakerStoreListener>();
  readonly #clock: () => number;

  constructor(clock: () => number = Date.now) {
    this.#clock = clock;
  }

  async publish(id: string, shared: SharedBreakerState): Promise<void> {
    const current = this.#states.get(id);
    if (current && !supersedes(current, shared)) {
      for (const listener of this.#listeners) listener(id, current);
      return;
    }
    this.#states.set(id, shared);
    this.#probes.delete(id);
    for (const listener of this.#listeners) listener(id, shared);
  }

  async read(id: string): Promise<SharedBreakerState | undefined> {
    return this.#states.get(id);
  }

  async acquireProbe(id: string, epoch: number, max: number, ttlMs: number): Promise<boolean> {
    const now = this.#clock();
    let count = this.#probes.get(id);
    if (!count || count.epoch !== epoch || count.expiresAt <= now) {
      count = { epoch, held: 0, successes: count?.epoch === epoch ? count.successes : 0, expiresAt: 0 };
      this.#probes.set(id, count);
    }
    if (count.held >= max) return false;
    count.held++;
    count.expiresAt = now + ttlMs;
    return true;
  }

  async releaseProbe(id: string, epoch: number): Promise<void> {
    const count = this.#probes.get(id);
    if (count && count.epoch === epoch && count.held > 0) count.held--;
  }

  async probeSucceeded(id: string, epoch: number): Promise<number> {
    let count = this.#probes.get(id);
    if (!count || count.epoch !== epoch) {
      count = { epoch, held: 0, successes: 0, expiresAt: 0 };
      this.#probes.set(id, count);
    }
    return ++count.successes;
  }

  subscribe(listener: BreakerStoreListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}
