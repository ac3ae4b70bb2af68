/**
 * The routing part of a model's configuration: what a target may declare
 * (role, tier, capacity limits, capabilities, prices, nesting another model
 * as a group) and the per-model routing options (conditions, complexity
 * thresholds, shedding threshold, a random seed for reproducible splits).
 *
 * Kept apart from config/schema.ts so routing can grow without touching the
 * shared schema beyond one import.
 */
import { z } from 'zod';

/**
 * How deep groups may nest (`m` → `{ group: g1 }` → `{ group: g2 }` is 2 deep).
 * Deeper configs are refused at start (validate-routing.ts), so the model
 * table and the router, which stop at this depth too, never cut a route short.
 */
export const MAX_GROUP_DEPTH = 16;

const positiveInt = (what: string) =>
  z
    .number({ error: `expected a number for ${what}` })
    .int({ error: `expected a whole number for ${what}` })
    .positive({ error: `expected a positive number for ${what}` });

const price = z.number({ error: 'expected a price in USD per million tokens' }).min(0);

export const targetLimitsSchema = z.strictObject({
  /** Requests per minute the upstream allows this target. */
  rpm: positiveInt('rpm').optional(),
  /** Tokens (prompt + expected completion) per minute. */
  tpm: positiveInt('tpm').optional(),
  /** Requests that may start at once before the per-minute rate applies (default: rpm). */
  burst: positiveInt('burst').optional(),
});

/**
 * One target: either an upstream (`provider` + `model`) or another model of
 * this config (`group`), whose own targets and strategy are used in its place.
 */
export const targetSchema = z
  .strictObject({
    provider: z.string({ error: 'expected a provider name' }).min(1).optional(),
    model: z.string({ error: 'expected the upstream model id' }).min(1).optional(),
    group: z.string({ error: 'expected the name of another model' }).min(1).optional(),
    weight: z
      .number({ error: 'expected a number' })
      .positive({ error: 'expected a positive weight' })
      .default(1),
    /** `secondary` serves only when no primary can; `backup` comes last of all. */
    role: z.enum(['primary', 'secondary', 'backup']).default('primary'),
    /** For the `complexity` strategy. */
    tier: z.enum(['small', 'medium', 'large']).optional(),
    /** Free-form labels that `routes[].targets` may select by (e.g. `local`). */
    tags: z.array(z.string().min(1)).default([]),
    limits: targetLimitsSchema.optional(),
    // Declared capabilities: absent means "assumed capable".
    context_window: positiveInt('context_window').optional(),
    tools: z.boolean().optional(),
    vision: z.boolean().optional(),
    json_mode: z.boolean().optional(),
    // Prices in USD per million tokens; absent means the built-in table (or unknown).
    input_per_mtok: price.optional(),
    output_per_mtok: price.optional(),
  })
  .superRefine((target, ctx) => {
    const upstream = target.provider !== undefined && target.model !== undefined;
    const group = target.group !== undefined;
    if (upstream === group || (group && (target.provider !== undefined || target.model !== undefined))) {
      ctx.addIssue({ code: 'custom', message: 'expected either provider+model or group' });
    }
  });

const stringOrList = z.union([z.string(), z.array(z.string()).min(1)], {
  error: 'expected a string or a list of strings',
});
const scalar = z.union([z.string(), z.number(), z.boolean()]);

/** A condition: every field given must match (AND). */
export const routeWhenSchema = z
  .strictObject({
    /** The virtual key's tier (one of). */
    key_tier: stringOrList.optional(),
    /** Key metadata fields that must equal these values (a list means one of). */
    key_metadata: z.record(z.string(), z.union([scalar, z.array(scalar).min(1)])).optional(),
    /** Request headers (names case-insensitive) that must equal these values (a list means one of). */
    headers: z.record(z.string(), stringOrList).optional(),
  })
  .refine((w) => w.key_tier !== undefined || w.key_metadata !== undefined || w.headers !== undefined, {
    message: 'expected at least one of key_tier, key_metadata, headers',
  });

/** First matching rule wins; it restricts the model to the selected targets. */
export const routeRuleSchema = z.strictObject({
  when: routeWhenSchema,
  /** Target ids (`provider/model`, `group:<model>`), group names, tags, or `*` for all (config/route-selector.ts). */
  targets: z.array(z.string().min(1)).min(1, { error: 'expected at least one target selector' }),
});

const complexityTier = z.enum(['small', 'medium', 'large'], { error: 'expected small, medium or large' });
/** Built-in classifiers (src/routing/complexity/); several vote, the largest tier wins. */
const complexityClassifierName = z.enum(['heuristic', 'nearest-neighbour', 'judge'], {
  error: 'expected heuristic, nearest-neighbour or judge',
});

/** The `judge` classifier: a cheap model of this gateway rates each request (README "Complexity routing"). */
export const complexityJudgeSchema = z.strictObject({
  /** A chat model this gateway serves (its own routing, retries, breakers and prices apply). */
  model: z.string({ error: 'expected the name of a model of this gateway' }).min(1),
  /** Past this the request is classified by the heuristic (`judge->heuristic`); it covers retries. */
  timeout_ms: positiveInt('timeout_ms').max(60_000).default(1500),
  /** How long a judged prompt's tier is remembered (per key). */
  cache_ttl_s: positiveInt('cache_ttl_s').default(3600),
  /** Judged prompts remembered at most (least recently used go first). */
  cache_entries: positiveInt('cache_entries').max(10_000_000).default(10_000),
});

export type ComplexityJudgeConfig = z.output<typeof complexityJudgeSchema>;

export const complexityThresholdsSchema = z
  .strictObject({
    small_max: z.number().min(0).max(10).default(3),
    medium_max: z.number().min(0).max(10).default(6),
    classifier: z
      .union([complexityClassifierName, z.array(complexityClassifierName).min(1)], {
        error: 'expected heuristic, nearest-neighbour or judge, or a list of them',
      })
      .default('heuristic'),
    /** For `classifier: judge`: which model rates requests, and how long it may take. */
    judge: complexityJudgeSchema.optional(),
    /** Below this confidence a classification goes up a tier (the safety valve), never down. */
    min_confidence: z.number().min(0).max(1).default(0.8),
    /** Key tier → the smallest complexity tier its requests get (e.g. `{ enterprise: medium }`). */
    floor_by_tier: z.record(z.string().min(1), complexityTier).default({}),
  })
  .refine((c) => c.small_max <= c.medium_max, { message: 'expected small_max <= medium_max' })
  .refine((c) => c.judge !== undefined || ![c.classifier].flat().includes('judge'), {
    message: 'classifier judge needs judge: { model: <a chat model of this gateway> }',
    path: ['judge'],
  });

export type ComplexityConfig = z.output<typeof complexityThresholdsSchema>;

/** Spread into the model schema. */
export const routingModelFields = {
  complexity: complexityThresholdsSchema.prefault({}),
  routes: z.array(routeRuleSchema).default([]),
  /** Fraction of a target's limit beyond which new traffic prefers other targets. */
  shed_at: z.number().gt(0).max(1).default(0.8),
  /** Seeds the random source of weighted / least-latency choices (reproducible splits). */
  seed: z.number().int().optional(),
};

export type TargetConfig = z.output<typeof targetSchema>;
export type RouteRuleConfig = z.output<typeof routeRuleSchema>;
export type TargetLimits = z.output<typeof targetLimitsSchema>;
