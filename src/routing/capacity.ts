/**
 * Per-target capacity accounting against the upstream's declared limits
 * (`limits: { rpm, tpm, burst }`), in this process.
 *
 * Each limit is a leaky bucket: every attempt start pours in one request and
 * its estimated tokens; the bucket drains at the per-minute rate. `use` is the
 * fuller of the two buckets as a fraction of its size, so the router can move
 * a target behind the others at `shed_at` (default 0.8) — before the
 * upstream starts answering 429. O(1) memory and time per target; no timers.
 *
 * Counts are per process, unless a shared store is given (the gateway's
 * Redis rate-limit store): then each attempt start is also counted in the
 * fleet-wide window `target:<id>` (requests and tokens per minute), and the
 * count the store answers (drained at the limit's rate while this instance
 * sends nothing more there) joins this process's own. `use` is the fuller of
 * the two, so three instances shed at the provider's real limit, not at three
 * times it. The shared count is fire-and-forget: a routing decision never
 * waits for Redis, and sees the fleet's count as of this instance's last
 * attempt on the target.
 */
import type { TargetLimits } from '../config/routing-schema.ts';
import type { WindowRule } from '../limits/limit-rules.ts';
import type { RateLimitStore } from '../limits/rate-limit-store.ts';

interface Bucket {
  /** Bucket size (requests) and drain rate (requests per ms). */
  requestCapacity: number;
  requestDrain: number;
  requestLevel: number;
  tokenCapacity: number;
  tokenDrain: number;
  tokenLevel: number;
  updatedAt: number;
  /** The fleet's count in the shared windows as last seen (when there is a shared store). */
  shared: { requests: number; tokens: number; seenAt: number } | undefined;
}

const MINUTE_MS = 60_000;

/**
 * Every target's shared windows, counted, never refused: their limit is out
 * of any count's reach (capacity sheds; it does not refuse).
 */
const SHARED_REQUESTS: WindowRule = {
  id: 'requests-minute',
  unit: 'requests',
  windowMs: MINUTE_MS,
  limit: Number.MAX_SAFE_INTEGER,
};
const SHARED_TOKENS: WindowRule = {
  id: 'tokens-minute',
  unit: 'tokens',
  windowMs: MINUTE_MS,
  limit: Number.MAX_SAFE_INTEGER,
};

export class CapacityTracker {
  readonly #buckets = new Map<string, Bucket>();
  readonly #now: () => number;
  readonly #shared: RateLimitStore | undefined;
  readonly #onSharedError: (error: unknown) => void;

  constructor(
    now: () => number = Date.now,
    shared?: RateLimitStore,
    onSharedError: (error: unknown) => void = () => {},
  ) {
    this.#now = now;
    this.#shared = shared;
    this.#onSharedError = onSharedError;
  }

  /** Declares a target's limits; the first declaration of an id wins (ids are shared across models). */
  configure(targetId: string, limits: TargetLimits | undefined): void {
    if (limits === undefined || this.#buckets.has(targetId)) return;
    if (limits.rpm === undefined && limits.tpm === undefined) return;
    this.#buckets.set(targetId, {
      requestCapacity: limits.rpm === undefined ? 0 : (limits.burst ?? limits.rpm),
      requestDrain: (limits.rpm ?? 0) / MINUTE_MS,
      requestLevel: 0,
      tokenCapacity: limits.tpm ?? 0,
      tokenDrain: (limits.tpm ?? 0) / MINUTE_MS,
      tokenLevel: 0,
      updatedAt: this.#now(),
      shared: this.#shared === undefined ? undefined : { requests: 0, tokens: 0, seenAt: 0 },
    });
  }

  /** Whether the target has limits at all (unlimited targets are never shed). */
  has(targetId: string): boolean {
    return this.#buckets.has(targetId);
  }

  /** Accounts one attempt starting with about `tokens` tokens (worked out only for a limited target). */
  start(targetId: string, tokens: number | (() => number)): void {
    const bucket = this.#buckets.get(targetId);
    if (!bucket) return;
    drain(bucket, this.#now());
    const cost = Math.max(0, typeof tokens === 'function' ? tokens() : tokens);
    bucket.requestLevel += 1;
    bucket.tokenLevel += cost;
    if (bucket.shared !== undefined) this.#countShared(targetId, bucket, Math.ceil(cost));
  }

  #countShared(targetId: string, bucket: Bucket, tokens: number): void {
    const shared = bucket.shared!;
    this.#shared!.consume(`target:${targetId}`, [
      { rule: SHARED_REQUESTS, cost: 1 },
      { rule: SHARED_TOKENS, cost: tokens },
    ]).then(
      (decision) => {
        shared.requests = decision.rules[0]?.used ?? 0;
        shared.tokens = decision.rules[1]?.used ?? 0;
        shared.seenAt = this.#now();
      },
      (error: unknown) => this.#onSharedError(error),
    );
  }

  /** Fraction of the tighter limit in use now (0 for an unlimited target; may exceed 1). */
  use(targetId: string, now: number = this.#now()): number {
    const bucket = this.#buckets.get(targetId);
    if (!bucket) return 0;
    drain(bucket, now);
    let requestLevel = bucket.requestLevel;
    let tokenLevel = bucket.tokenLevel;
    const shared = bucket.shared;
    if (shared !== undefined && shared.seenAt > 0) {
      // What the fleet had counted when last seen, drained since at the limit's rate.
      const elapsed = Math.max(0, now - shared.seenAt);
      requestLevel = Math.max(requestLevel, shared.requests - elapsed * bucket.requestDrain);
      tokenLevel = Math.max(tokenLevel, shared.tokens - elapsed * bucket.tokenDrain);
    }
    const requests = bucket.requestCapacity > 0 ? requestLevel / bucket.requestCapacity : 0;
    const tokens = bucket.tokenCapacity > 0 ? tokenLevel / bucket.tokenCapacity : 0;
    return requests > tokens ? requests : tokens;
  }

  now(): number {
    return this.#now();
  }
}

function drain(bucket: Bucket, now: number): void {
  const elapsed = now - bucket.updatedAt;
  if (elapsed <= 0) return;
  bucket.requestLevel = Math.max(0, bucket.requestLevel - elapsed * bucket.requestDrain);
  bucket.tokenLevel = Math.max(0, bucket.tokenLevel - elapsed * bucket.tokenDrain);
  bucket.updatedAt = now;
}
