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
 * Counts are per process: N gateway instances each see 1/N of the traffic,
 * which is why shedding starts below 100%.
 */
import type { TargetLimits } from '../config/routing-schema.ts';

interface Bucket {
  /** Bucket size (requests) and drain rate (requests per ms). */
  requestCapacity: number;
  requestDrain: number;
  requestLevel: number;
  tokenCapacity: number;
  tokenDrain: number;
  tokenLevel: number;
  updatedAt: number;
}

const MINUTE_MS = 60_000;

export class CapacityTracker {
  readonly #buckets = new Map<string, Bucket>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
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
    bucket.requestLevel += 1;
    bucket.tokenLevel += Math.max(0, typeof tokens === 'function' ? tokens() : tokens);
  }

  /** Fraction of the tighter limit in use now (0 for an unlimited target; may exceed 1). */
  use(targetId: string, now: number = this.#now()): number {
    const bucket = this.#buckets.get(targetId);
    if (!bucket) return 0;
    drain(bucket, now);
    const requests = bucket.requestCapacity > 0 ? bucket.requestLevel / bucket.requestCapacity : 0;
    const tokens = bucket.tokenCapacity > 0 ? bucket.tokenLevel / bucket.tokenCapacity : 0;
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
