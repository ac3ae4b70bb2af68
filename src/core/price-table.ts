/**
 * What tokens cost: one table for billing (each attempt's `cost_micros`) and
 * for the `cost` routing strategy, so the gateway never bills by one price
 * and routes by another.
 *
 * Prices are USD per million tokens, the unit providers publish, which makes
 * the arithmetic exact: a token at $P per million costs P micro-dollars.
 * The built-in table holds list prices (standard tier, prompts within the
 * base context tier) of common OpenAI, Anthropic and Gemini models, checked
 * on PRICES_CHECKED; `pricing` in config overrides and extends it. A model in
 * neither is unknown: its cost is recorded as null (never 0), and the
 * gateway warns once per model.
 */
import type { Usage } from './types.ts';

/** USD per million tokens. */
export interface ModelPrice {
  input: number;
  output: number;
  /** Input tokens read from the provider's prompt cache; the input price when absent. */
  cached_input?: number | undefined;
  /** Input tokens written to the provider's prompt cache (Anthropic); the input price when absent. */
  cache_write?: number | undefined;
}

/** When the built-in prices were last checked against the providers' price pages. */
export const PRICES_CHECKED = '2026-11-30';

const BUILT_IN: Record<string, ModelPrice> = {
  // OpenAI
  'gpt-4o': { input: 2.5, output: 10, cached_input: 1.25 },
  'gpt-4o-mini': { input: 0.15, output: 0.6, cached_input: 0.075 },
  'gpt-4.1': { input: 2, output: 8, cached_input: 0.5 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6, cached_input: 0.1 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4, cached_input: 0.025 },
  'gpt-5': { input: 1.25, output: 10, cached_input: 0.125 },
  'gpt-5-mini': { input: 0.25, output: 2, cached_input: 0.025 },
  'gpt-5-nano': { input: 0.05, output: 0.4, cached_input: 0.005 },
  o3: { input: 2, output: 8, cached_input: 0.5 },
  'o3-mini': { input: 1.1, output: 4.4, cached_input: 0.55 },
  'o4-mini': { input: 1.1, output: 4.4, cached_input: 0.275 },
  'text-embedding-3-small': { input: 0.02, output: 0 },
  'text-embedding-3-large': { input: 0.13, output: 0 },
  // Anthropic (cache writes at the 5-minute rate)
  'claude-3-5-haiku-latest': { input: 0.8, output: 4, cached_input: 0.08, cache_write: 1 },
  'claude-3-5-sonnet-latest': { input: 3, output: 15, cached_input: 0.3, cache_write: 3.75 },
  'claude-3-7-sonnet-latest': { input: 3, output: 15, cached_input: 0.3, cache_write: 3.75 },
  'claude-haiku-4-5': { input: 1, output: 5, cached_input: 0.1, cache_write: 1.25 },
  'claude-sonnet-4-0': { input: 3, output: 15, cached_input: 0.3, cache_write: 3.75 },
  'claude-sonnet-4-5': { input: 3, output: 15, cached_input: 0.3, cache_write: 3.75 },
  'claude-opus-4-1': { input: 15, output: 75, cached_input: 1.5, cache_write: 18.75 },
  // Gemini (prompts up to 200k tokens)
  'gemini-2.5-pro': { input: 1.25, output: 10, cached_input: 0.31 },
  'gemini-2.5-flash': { input: 0.3, output: 2.5, cached_input: 0.075 },
  'gemini-2.5-flash-lite': { input: 0.1, output: 0.4, cached_input: 0.025 },
  'gemini-2.0-flash': { input: 0.1, output: 0.4, cached_input: 0.025 },
  // The built-in mock provider's model (the no-config default): it costs nothing.
  'mock-1': { input: 0, output: 0 },
};

/** A dated snapshot id (`gpt-4o-2024-08-06`, `claude-3-5-haiku-20241022`) is priced as its family. */
const SNAPSHOT = /-(\d{4}-\d{2}-\d{2}|\d{8})$/;

export class PriceTable {
  readonly #prices: Map<string, ModelPrice>;

  /** `overrides`: config's `pricing`, which wins over (and adds to) the built-in table. */
  constructor(overrides: Record<string, ModelPrice> = {}) {
    this.#prices = new Map(Object.entries({ ...BUILT_IN, ...overrides }));
  }

  /** The model's price: its own entry, else its family's for a dated snapshot; undefined when unknown. */
  priceOf(model: string): ModelPrice | undefined {
    const own = this.#prices.get(model);
    if (own !== undefined) return own;
    const family = model.replace(SNAPSHOT, '');
    if (family !== model) {
      return this.#prices.get(family) ?? this.#prices.get(`${family}-latest`);
    }
    return undefined;
  }

  /**
   * What `usage` cost on `model`, in integer micro-dollars; null when the
   * model's price is unknown. Canonical usage counts cache reads and writes
   * inside `prompt_tokens`; each is priced at its own rate, reasoning tokens
   * are output (inside `completion_tokens`). No usage: nothing billed, 0.
   */
  costMicros(model: string, usage: Usage | undefined): number | null {
    const price = this.priceOf(model);
    if (price === undefined) return null;
    if (usage === undefined) return 0;
    const cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
    const written =
      typeof usage['cache_creation_input_tokens'] === 'number' ? usage['cache_creation_input_tokens'] : 0;
    const uncached = Math.max(0, usage.prompt_tokens - cached - written);
    const micros =
      uncached * price.input +
      cached * (price.cached_input ?? price.input) +
      written * (price.cache_write ?? price.input) +
      usage.completion_tokens * price.output;
    return Math.round(micros);
  }
}
