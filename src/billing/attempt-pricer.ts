/**
 * Prices each attempt for its ledger row (`cost_micros`): the gateway's
 * price table, and one warning per model it cannot price (its rows then say
 * null, unknown, never 0).
 */
import type { PriceTable } from '../core/price-table.ts';
import type { Usage } from '../core/types.ts';

export interface AttemptPricer {
  /** Integer micro-dollars, or null when the model's price is unknown. */
  costMicros(model: string, usage: Usage | undefined): number | null;
}

export function attemptPricer(
  table: PriceTable,
  logger: { warn(obj: object, msg: string): void },
): AttemptPricer {
  const warned = new Set<string>();
  return {
    costMicros(model, usage) {
      const cost = table.costMicros(model, usage);
      if (cost === null && !warned.has(model) && warned.size < 1_000) {
        warned.add(model);
        logger.warn(
          { model },
          'no price for this model: its cost is recorded as unknown (add it under `pricing` in the config)',
        );
      }
      return cost;
    },
  };
}
