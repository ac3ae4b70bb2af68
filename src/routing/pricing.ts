/**
 * Prices for the `cost` strategy, in USD per million tokens.
 *
 * A target's own `input_per_mtok` / `output_per_mtok` always win; the small
 * built-in table only spares users from typing list prices of common models.
 * It is a routing hint, not a bill: list prices change, so anything that
 * charges money must use its own table.
 */

export interface TargetPrice {
  inputPerMTok: number;
  outputPerMTok: number;
}

/** List prices (standard tier) of common models, for ordering only. */
const BUILT_IN: Record<string, TargetPrice> = {
  'gpt-4o': { inputPerMTok: 2.5, outputPerMTok: 10 },
  'gpt-4o-mini': { inputPerMTok: 0.15, outputPerMTok: 0.6 },
  'gpt-4.1': { inputPerMTok: 2, outputPerMTok: 8 },
  'gpt-4.1-mini': { inputPerMTok: 0.4, outputPerMTok: 1.6 },
  'gpt-4.1-nano': { inputPerMTok: 0.1, outputPerMTok: 0.4 },
  'o3-mini': { inputPerMTok: 1.1, outputPerMTok: 4.4 },
  'claude-3-5-haiku-latest': { inputPerMTok: 0.8, outputPerMTok: 4 },
  'claude-3-5-sonnet-latest': { inputPerMTok: 3, outputPerMTok: 15 },
  'text-embedding-3-small': { inputPerMTok: 0.02, outputPerMTok: 0 },
  'text-embedding-3-large': { inputPerMTok: 0.13, outputPerMTok: 0 },
};

/** The declared price if any part was given (the other part then defaults to 0), else the table's. */
export function priceOf(
  model: string,
  inputPerMTok: number | undefined,
  outputPerMTok: number | undefined,
): TargetPrice | undefined {
  if (inputPerMTok !== undefined || outputPerMTok !== undefined) {
    return { inputPerMTok: inputPerMTok ?? 0, outputPerMTok: outputPerMTok ?? 0 };
  }
  return BUILT_IN[model];
}

/** Expected cost in USD of `promptTokens` in and `completionTokens` out; Infinity when unknown. */
export function expectedCost(
  price: TargetPrice | undefined,
  promptTokens: number,
  completionTokens: number,
): number {
  if (price === undefined) return Number.POSITIVE_INFINITY;
  return (promptTokens * price.inputPerMTok + completionTokens * price.outputPerMTok) / 1_000_000;
}
