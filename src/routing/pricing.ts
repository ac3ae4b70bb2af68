/**
 * Prices for the `cost` strategy, in USD per million tokens: a target's own
 * `input_per_mtok` / `output_per_mtok` when given, else the gateway's one
 * price table (src/core/price-table.ts, with config's `pricing`), the same
 * one billing reads.
 */
import type { PriceTable } from '../core/price-table.ts';

export interface TargetPrice {
  inputPerMTok: number;
  outputPerMTok: number;
}

/** The declared price if any part was given (the other part then defaults to 0), else the table's. */
export function priceOf(
  model: string,
  inputPerMTok: number | undefined,
  outputPerMTok: number | undefined,
  table: PriceTable,
): TargetPrice | undefined {
  if (inputPerMTok !== undefined || outputPerMTok !== undefined) {
    return { inputPerMTok: inputPerMTok ?? 0, outputPerMTok: outputPerMTok ?? 0 };
  }
  const price = table.priceOf(model);
  return price === undefined ? undefined : { inputPerMTok: price.input, outputPerMTok: price.output };
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
