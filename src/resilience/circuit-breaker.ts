/**
 * A circuit breaker per upstream target.
 *
 * CLOSED → OPEN after `failureThreshold` consecutive failures, or when the
 * failure ratio over a rolling window passes `failureRate` (once the window
 * holds `minRequests` calls). OPEN rejects calls for `recoveryTimeoutMs`, then
 * HALF_OPEN admits at most `halfOpenMaxProbes` concurrent probes (counted
 * across instances by the store): `successThreshold` successes close it, one
 * failure reopens it; a probe that hangs ends at its attempt's timeouts and
 * fails like any other (its permit also lapses after `probeTtlMs`, so a crashed
 * holder cannot keep the breaker half-open: resilience4j #903). Only upstream
 * failures count: a client's own 4xx or a client abort says nothing about the
 * target's health. An operator can isolate a breaker (ISOLATED: no probes, no
 * traffic on any instance) until they reset it.
 *
 * The hot path (CLOSED) is synchronous bookkeeping; the store is touched only
 * on transitions and for probe permits. Time comes from an injectable clock,
 * so tests drive the state machine without sleeping.
 */
import { ClientClosedError, countsAgainstTarget, GatewayError } from '../core/errors.ts';
import {
  type BreakerState,
  type BreakerStore,
  MemoryBreakerStore,
  type SharedBreakerState,
} from './breaker-store.ts';

export type { BreakerState } from './breaker-store.ts';

export interface CircuitBreakerOptions {
  /** Identity in the shared store, metrics and admin (a target id such as `openai/gpt-4o`). */
  id?: string;
  /** @default 5 */
  failureThreshold?: number;
  /** @default 0.5 */
  failureRate?: number;
  /** @default 30000 */
  windowMs?: number;
  /** @default 20 */
  minRequests?: number;
  /** @default 60000 */
  recoveryTimeoutMs?: number;
  /** @default 1 */
  halfOpenMaxProbes?: number;
  /** @default 1 */
  successThreshold?: number;
  /** A probe permit not released by then lapses (its holder crashed or hung). @default recoveryTimeoutMs */
  probeTtlMs?: number;
  clock?: () => number;
  /** Shares state across instances; a private in-memory store by default. */
  store?: BreakerStore;
  /** Which errors count against the target. @default isUpstreamFailure */
  isFailure?: (error: unknown) => boolean;
}

export interface StateChange {
  id: string;
  from: BreakerState;
  to: BreakerState;
}

/** One admitted call; settle it exactly once (later calls are ignored). */
export interface BreakerPermit {
  readonly probe: boolean;
  success(): Promise<void>;
  failure(): Promise<void>;
  /** The call ended without saying anything about the target (client gone, client error). */
  release(): Promise<void>;
}

/** Thrown by `call` while the breaker rejects calls. */
export class CircuitOpenError extends GatewayError {
  readonly breakerId: string;
  constructor(id: string, retryAfterMs: number | undefined) {
    super('upstream_unavailable', `Circuit breaker for '${id}' is open`, {
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
    this.breakerId = id;
  }
}

/** Default failure classifier: upstream faults count; client errors, aborts and open circuits do not. */
export function isUpstreamFailure(error: unknown): boolean {
  if (GatewayError.is(error)) return countsAgainstTarget(error.code);
  if (error instanceof Error && (error.name === 'AbortError' || error instanceof ClientClosedError)) {
    return false;
  }
  return true;
}

const BUCKETS = 10;

type Outcome = 'success' | 'failure' | 'release';
type Settle = (probe: boolean, epoch: number, outcome: Outcome) => Promise<void>;

/** Shared by every settlement that has nothing left to wait for (the closed breaker's common case). */
const SETTLED: Promise<void> = Promise.resolve();

/**
 * A permit as a small object rather than four closures: one is made per
 * upstream attempt. `settle` belongs to the breaker (one per breaker).
 */
class Permit implements BreakerPermit {
  readonly probe: boolean;
  readonly #epoch: number;
  readonly #settle: Settle;
  #settled = false;

  constructor(probe: boolean, epoch: number, settle: Settle) {
    this.probe = probe;
    this.#epoch = epoch;
    this.#settle = settle;
  }

  success(): Promise<void> {
    return this.#once('success');
  }

  failure(): Promise<void> {
    return this.#once('failure');
  }

  release(): Promise<void> {
    return this.#once('release');
  }

  #once(outcome: Outcome): Promise<void> {
    if (this.#settled) return SETTLED;
    this.#settled = true;
    return this.#settle(this.probe, this.#epoch, outcome);
  }
}

interface Bucket {
  slot: number;
  ok: number;
  failed: number;
}

export class CircuitBreaker {
  readonly id: string;
  readonly failureThreshold: number;
  readonly failureRate: number;
  readonly windowMs: number;
  readonly minRequests: number;
  readonly recoveryTimeoutMs: number;
  readonly halfOpenMaxProbes: number;
  readonly successThreshold: number;
  readonly #probeTtlMs: number;
  readonly #clock: () => number;
  readonly #store: BreakerStore;
  readonly #isFailure: (error: unknown) => boolean;
  readonly #listeners = new Set<(change: StateChange) => void>();
  readonly #buckets: Bucket[] = Array.from({ length: BUCKETS }, () => ({ slot: -1, ok: 0, failed: 0 }));
  readonly #unsubscribe: () => void;
  readonly #settle: Settle = (probe, epoch, outcome) =>
    probe ? this.#settleProbe(epoch, outcome) : this.#settleCall(epoch, outcome);
  #state: BreakerState = 'closed';
  #epoch = 0;
  #openUntil = 0;
  /** Epoch of the last close applied; an isolation older than it is stale. */
  #closedEpoch = 0;
  #consecutiveFailures = 0;

  constructor(options: CircuitBreakerOptions = {}) {
    this.id = options.id ?? 'default';
    this.failureThreshold = options.failureThreshold ?? 5;
    this.failureRate = options.failureRate ?? 0.5;
    this.windowMs = options.windowMs ?? 30_000;
    this.minRequests = options.minRequests ?? 20;
    this.recoveryTimeoutMs = options.recoveryTimeoutMs ?? 60_000;
    this.halfOpenMaxProbes = options.halfOpenMaxProbes ?? 1;
    this.successThreshold = options.successThreshold ?? 1;
    this.#probeTtlMs = options.probeTtlMs ?? this.recoveryTimeoutMs;
    this.#clock = options.clock ?? Date.now;
    this.#store = options.store ?? new MemoryBreakerStore(this.#clock);
    this.#isFailure = options.isFailure ?? isUpstreamFailure;
    this.#unsubscribe = this.#store.subscribe((id, shared) => {
      if (id === this.id) this.#apply(shared);
    });
  }

  /** The state as callers see it: an open breaker whose recovery time has passed is half-open. */
  get state(): BreakerState {
    if (this.#state === 'open' && this.#clock() >= this.#openUntil) return 'half_open';
    return this.#state;
  }

  /** Milliseconds until probes are admitted (0 unless open). */
  get retryAfterMs(): number {
    return this.#state === 'open' ? Math.max(0, this.#openUntil - this.#clock()) : 0;
  }

  /** Listens to transitions; returns an unsubscribe function. */
  onStateChange(listener: (change: StateChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Runs `fn` through the breaker: rejects at once with `CircuitOpenError`
   * while open, otherwise records the outcome.
   *
   * @example
   * const breaker = new CircuitBreaker({ failureThreshold: 3, recoveryTimeoutMs: 10_000 });
   * const answer = await breaker.call(() => client.chat(request));
   */
  async call<T>(fn: () => Promise<T>): Promise<T> {
    const permit = await this.acquire();
    if (!permit) throw new CircuitOpenError(this.id, this.retryAfterMs || undefined);
    let value: T;
    try {
      value = await fn();
    } catch (error) {
      await (this.#isFailure(error) ? permit.failure() : permit.release());
      throw error;
    }
    await permit.success();
    return value;
  }

  /**
   * The hot path of `acquire()`: a permit at once while closed; undefined
   * otherwise, and then `acquire()` decides (it may read the shared store).
   */
  acquireIfClosed(): BreakerPermit | undefined {
    return this.#state === 'closed' ? new Permit(false, this.#epoch, this.#settle) : undefined;
  }

  /** A permit to call the target, or undefined while it must not be called. */
  async acquire(): Promise<BreakerPermit | undefined> {
    if (this.#state === 'closed') return this.#permit(false, this.#epoch);
    if (this.#state === 'isolated') return undefined;
    if (this.#state === 'open') {
      if (this.#clock() < this.#openUntil) return undefined;
      // Another instance may have closed, re-opened or isolated it while we waited.
      const shared = await this.#store.read(this.id);
      if (shared) this.#apply(shared);
      if (this.#closed()) return this.#permit(false, this.#epoch);
      if (this.#isolated() || this.#clock() < this.#openUntil) return undefined;
      this.#transition('half_open');
    }
    const epoch = this.#epoch;
    const granted = await this.#store.acquireProbe(this.id, epoch, this.halfOpenMaxProbes, this.#probeTtlMs);
    return granted ? this.#permit(true, epoch) : undefined;
  }

  /** Closes the breaker on every instance (admin reset). */
  async reset(): Promise<void> {
    const epoch = this.#nextEpoch();
    this.#apply({ state: 'closed', epoch, openUntil: 0 });
    await this.#store.publish(this.id, { state: 'closed', epoch, openUntil: 0 });
  }

  /** Opens the breaker on every instance now (tests); probes resume after the recovery timeout. */
  async trip(): Promise<void> {
    await this.#open();
  }

  /** Holds the breaker open on every instance, with no probes, until `reset` (admin isolate). */
  async isolate(): Promise<void> {
    const shared: SharedBreakerState = { state: 'isolated', epoch: this.#nextEpoch(), openUntil: 0 };
    this.#apply(shared);
    await this.#store.publish(this.id, shared);
  }

  /** Adopts the shared state, for an instance that starts while a breaker is open or isolated elsewhere. */
  async sync(): Promise<void> {
    const shared = await this.#store.read(this.id);
    if (shared) this.#apply(shared);
  }

  dispose(): void {
    this.#unsubscribe();
    this.#listeners.clear();
  }

  #permit(probe: boolean, epoch: number): BreakerPermit {
    return new Permit(probe, epoch, this.#settle);
  }

  /** Synchronous bookkeeping; a promise of its own only when the call opens the breaker. */
  #settleCall(epoch: number, outcome: Outcome): Promise<void> {
    // Calls admitted before an opening say nothing new about the target.
    if (outcome === 'release' || this.#state !== 'closed' || epoch !== this.#epoch) return SETTLED;
    this.#count(outcome === 'success');
    if (outcome === 'success') {
      this.#consecutiveFailures = 0;
      return SETTLED;
    }
    this.#consecutiveFailures++;
    if (this.#consecutiveFailures >= this.failureThreshold || this.#rateTripped()) return this.#open();
    return SETTLED;
  }

  async #settleProbe(epoch: number, outcome: Outcome): Promise<void> {
    await this.#store.releaseProbe(this.id, epoch);
    if (outcome === 'release' || epoch !== this.#epoch || this.#state === 'closed') return;
    if (outcome === 'failure') {
      await this.#open();
      return;
    }
    const successes = await this.#store.probeSucceeded(this.id, epoch);
    if (successes >= this.successThreshold && epoch === this.#epoch && !this.#closed()) {
      this.#apply({ state: 'closed', epoch, openUntil: 0 });
      await this.#store.publish(this.id, { state: 'closed', epoch, openUntil: 0 });
    }
  }

  async #open(): Promise<void> {
    // Only a reset lifts an isolation.
    if (this.#isolated()) return;
    const epoch = this.#nextEpoch();
    const shared: SharedBreakerState = { state: 'open', epoch, openUntil: epoch + this.recoveryTimeoutMs };
    this.#apply(shared);
    await this.#store.publish(this.id, shared);
  }

  /** Epochs only grow, even if the clock stands still (tests) or two transitions share a millisecond. */
  #nextEpoch(): number {
    return Math.max(this.#clock(), this.#epoch + 1);
  }

  #apply(shared: SharedBreakerState): void {
    // An isolation the store kept over this instance's newer open (see `supersedes`) still applies.
    const keptIsolation = shared.state === 'isolated' && shared.epoch > this.#closedEpoch;
    if (shared.epoch < this.#epoch && !keptIsolation) return;
    if (shared.epoch === this.#epoch && shared.state !== 'closed' && !this.#closed()) {
      if (shared.state === 'open' || this.#isolated()) return;
    }
    const newEpoch = shared.epoch !== this.#epoch;
    this.#epoch = shared.epoch;
    if (shared.state === 'isolated') {
      this.#openUntil = 0;
      this.#transition('isolated');
    } else if (shared.state === 'open') {
      this.#openUntil = shared.openUntil;
      this.#transition('open');
    } else {
      this.#openUntil = 0;
      this.#closedEpoch = shared.epoch;
      if (newEpoch || this.#state !== 'closed') this.#resetCounts();
      this.#transition('closed');
    }
  }

  /** Re-reads the field (TS would otherwise keep a narrowing across calls that change it). */
  #closed(): boolean {
    return this.#state === 'closed';
  }

  #isolated(): boolean {
    return this.#state === 'isolated';
  }

  #transition(to: BreakerState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    if (to !== 'closed') this.#resetCounts();
    for (const listener of this.#listeners) listener({ id: this.id, from, to });
  }

  #resetCounts(): void {
    this.#consecutiveFailures = 0;
    for (const bucket of this.#buckets) bucket.slot = -1;
  }

  #count(ok: boolean): void {
    const slot = Math.floor(this.#clock() / (this.windowMs / BUCKETS));
    const bucket = this.#buckets[slot % BUCKETS]!;
    if (bucket.slot !== slot) {
      bucket.slot = slot;
      bucket.ok = 0;
      bucket.failed = 0;
    }
    if (ok) bucket.ok++;
    else bucket.failed++;
  }

  #rateTripped(): boolean {
    const current = Math.floor(this.#clock() / (this.windowMs / BUCKETS));
    let ok = 0;
    let failed = 0;
    for (const bucket of this.#buckets) {
      if (bucket.slot > current - BUCKETS && bucket.slot <= current) {
        ok += bucket.ok;
        failed += bucket.failed;
      }
    }
    const total = ok + failed;
    return total >= this.minRequests && failed / total >= this.failureRate;
  }
}
