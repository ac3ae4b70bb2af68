/**
 * A limits object (tiers, keys, teams alike: DESIGN.md) as the window rules a
 * rate-limit store counts. `requests_per_minute: 1000` is the rule
 * `requests-minute`: at most 1,000 requests admitted in any 60 s.
 * `max_concurrent` is not a window; the concurrency limiter holds it;
 * `per_user` is the limits object each end user gets (a subject of its own).
 */
import type { LimitsConfig } from '../config/limits-schema.ts';

/** A limits object as config and the admin API take it. */
export type Limits = LimitsConfig;

export type LimitUnit = 'requests' | 'tokens';

export interface WindowRule {
  /** `<unit>-<period>`, as the rule is named in `RateLimit-Policy`. */
  readonly id: string;
  readonly unit: LimitUnit;
  readonly windowMs: number;
  readonly limit: number;
}

const PERIODS = [
  ['second', 1_000],
  ['minute', 60_000],
  ['hour', 3_600_000],
  ['day', 86_400_000],
] as const;

/** The window rules of a limits object, requests first, shortest window first. */
export function windowRules(limits: Limits): WindowRule[] {
  const rules: WindowRule[] = [];
  for (const unit of ['requests', 'tokens'] as const) {
    for (const [period, windowMs] of PERIODS) {
      const limit = (limits as Record<string, number | undefined>)[`${unit}_per_${period}`];
      if (limit !== undefined) rules.push({ id: `${unit}-${period}`, unit, windowMs, limit });
    }
  }
  return rules;
}

/**
 * `base` with every limit `override` sets replacing it (a key's own limits
 * over its tier's); `per_user` merges the same way, one limit at a time.
 */
export function mergeLimits(base: Limits | undefined, override: Limits | undefined): Limits {
  const merged: Limits = { ...base };
  for (const [name, value] of Object.entries(override ?? {})) {
    if (value === undefined || name === 'per_user') continue;
    (merged as Record<string, unknown>)[name] = value;
  }
  if (base?.per_user !== undefined || override?.per_user !== undefined) {
    merged.per_user = mergeLimits(base?.per_user, override?.per_user) as Limits['per_user'];
  }
  return merged;
}
