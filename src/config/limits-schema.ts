/**
 * The limits object (tiers, keys and teams alike; DESIGN.md) and the tiers
 * with the seeds' defaults. A window limit counts requests or tokens admitted
 * in any window of its length (src/limits/); `max_concurrent` caps requests
 * in flight at once.
 */
import { z } from 'zod';

const count = (what: string) =>
  z
    .number({ error: `expected a whole number of ${what}` })
    .int({ error: `expected a whole number of ${what}` })
    .positive({ error: `expected at least 1 ${what}` })
    .max(1_000_000_000_000);

const limitFields = {
  requests_per_second: count('requests').optional(),
  requests_per_minute: count('requests').optional(),
  requests_per_hour: count('requests').optional(),
  requests_per_day: count('requests').optional(),
  tokens_per_minute: count('tokens').optional(),
  tokens_per_day: count('tokens').optional(),
  max_concurrent: count('requests').optional(),
};

export const limitsSchema = z.strictObject({
  ...limitFields,
  /**
   * The limits each end user of the key (or team) gets on their own: the
   * request's `user` field (Anthropic: `metadata.user_id`), or the header
   * `server.end_user_header` names. A request naming no end user is held to
   * the key's limits alone.
   */
  per_user: z.strictObject(limitFields).optional(),
});

export type LimitsConfig = z.output<typeof limitsSchema>;

const usd = z
  .number({ error: 'expected an amount in USD' })
  .positive({ error: 'expected an amount above 0 USD' })
  .max(1_000_000_000);

/** Spend caps in USD: per UTC day, per UTC calendar month, and in all. */
export const budgetSchema = z.strictObject({
  daily_usd: usd.optional(),
  monthly_usd: usd.optional(),
  total_usd: usd.optional(),
});

export type BudgetConfig = z.output<typeof budgetSchema>;

/** The seeds' tiers: a key or team of tier `free` gets 100 requests an hour, and so on. */
export const DEFAULT_TIERS: Readonly<Record<string, LimitsConfig>> = {
  free: { requests_per_hour: 100 },
  pro: { requests_per_hour: 1_000 },
  enterprise: { requests_per_hour: 10_000 },
};

export const tierName = z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, {
  error: 'expected a tier name of letters, digits, ".", "_" or "-" (at most 100)',
});

/** `tiers:` in config: the defaults, each replaced or added to by the file's own. */
export const tiersSchema = z
  .record(tierName, limitsSchema)
  .default({})
  .transform((tiers) => ({ ...DEFAULT_TIERS, ...tiers }));
