/**
 * The model table: client-facing model names → ordered upstream targets,
 * resolved once at start so the hot path only does a Map lookup.
 */

import type { AuthenticatedKey } from '../auth/key-store.ts';
import { targetEntryId } from '../config/route-selector.ts';
import { MAX_GROUP_DEPTH, type TargetLimits } from '../config/routing-schema.ts';
import type { Config, ModelConfig, TargetConfig } from '../config/schema.ts';
import { GatewayError } from '../core/errors.ts';
import { PriceTable } from '../core/price-table.ts';
import type { ProviderAdapter, Timeouts } from '../providers/types.ts';
import { printable } from '../util/printable.ts';
import { priceOf, type TargetPrice } from './pricing.ts';

export type TargetRole = 'primary' | 'secondary' | 'backup';
export type ComplexityTier = 'small' | 'medium' | 'large';

export interface RouteTarget {
  /** Stable identity for breakers, metrics, logs and admin: `<provider>/<upstream model>`. */
  id: string;
  provider: ProviderAdapter;
  /** The upstream model id. */
  model: string;
  weight: number;
  role: TargetRole;
  tier: ComplexityTier | undefined;
  tags: readonly string[];
  limits: TargetLimits | undefined;
  /** Declared capabilities; undefined means "assumed capable". */
  capabilities: TargetCapabilities;
  /** USD per million tokens, from the target config or the built-in table; undefined if unknown. */
  price: TargetPrice | undefined;
}

export interface TargetCapabilities {
  contextWindow: number | undefined;
  tools: boolean | undefined;
  vision: boolean | undefined;
  jsonMode: boolean | undefined;
}

/**
 * One line of a model's `targets:` as the router sees it: an upstream target,
 * or another model used as a group (decided with that model's own strategy).
 */
export interface RouteEntry {
  /** The target id, or `group:<model>`. */
  id: string;
  weight: number;
  role: TargetRole;
  tier: ComplexityTier | undefined;
  tags: readonly string[];
  /** The upstream target, for a leaf. */
  target: RouteTarget | undefined;
  /** The nested model's name, for a group. */
  group: string | undefined;
  /** Every upstream target reachable through this entry (the target itself for a leaf). */
  leaves: readonly RouteTarget[];
}

export interface ModelRoute {
  name: string;
  config: ModelConfig;
  /** Every upstream target of the model, groups flattened, config order, each once. */
  targets: RouteTarget[];
  entries: RouteEntry[];
  timeouts: Timeouts;
  created: number;
}

/** `prices`: the gateway's one price table (billing reads the same); built from `config.pricing` when absent. */
export function buildModelTable(
  config: Config,
  providers: Map<string, ProviderAdapter>,
  prices: PriceTable = new PriceTable(config.pricing),
): Map<string, ModelRoute> {
  const created = Math.floor(Date.now() / 1000);
  const table = new Map<string, ModelRoute>();
  for (const [name, model] of Object.entries(config.models)) {
    const entries: RouteEntry[] = [];
    for (const t of model.targets) {
      if (t.group !== undefined) {
        entries.push({
          id: targetEntryId(t),
          weight: t.weight,
          role: t.role,
          tier: t.tier,
          tags: t.tags,
          target: undefined,
          group: t.group,
          leaves: [],
        });
        continue;
      }
      const target = buildTarget(t, providers, prices);
      entries.push({
        id: target.id,
        weight: t.weight,
        role: t.role,
        tier: t.tier,
        tags: t.tags,
        target,
        group: undefined,
        leaves: [target],
      });
    }
    table.set(name, {
      name,
      config: model,
      created,
      timeouts: {
        connectMs: model.timeouts.connect_ms,
        firstByteMs: model.timeouts.first_byte_ms,
        totalMs: model.timeouts.total_ms,
        idleMs: model.timeouts.idle_ms,
      },
      targets: [],
      entries,
    });
  }
  // Groups resolve once every model exists; config validation already refused cycles
  // and nesting deeper than MAX_GROUP_DEPTH.
  for (const route of table.values()) route.targets = leavesOf(table, route.name, 0);
  for (const route of table.values()) {
    for (const entry of route.entries) {
      if (entry.group !== undefined) entry.leaves = table.get(entry.group)?.targets ?? [];
    }
  }
  return table;
}

function buildTarget(
  t: TargetConfig,
  providers: Map<string, ProviderAdapter>,
  prices: PriceTable,
): RouteTarget {
  const model = t.model!;
  return {
    id: targetEntryId(t),
    provider: providers.get(t.provider!)!,
    model,
    weight: t.weight,
    role: t.role,
    tier: t.tier,
    tags: t.tags,
    limits: t.limits,
    capabilities: {
      contextWindow: t.context_window,
      tools: t.tools,
      vision: t.vision,
      jsonMode: t.json_mode,
    },
    price: priceOf(model, t.input_per_mtok, t.output_per_mtok, prices),
  };
}

function leavesOf(table: Map<string, ModelRoute>, name: string, depth: number): RouteTarget[] {
  const route = table.get(name);
  if (!route || depth > MAX_GROUP_DEPTH) return [];
  const out: RouteTarget[] = [];
  for (const entry of route.entries) {
    const leaves = entry.target ? [entry.target] : leavesOf(table, entry.group!, depth + 1);
    for (const leaf of leaves) if (!out.some((t) => t.id === leaf.id)) out.push(leaf);
  }
  return out;
}

/** The route for `model`, or 404; 403 if the key may not use it. */
export function resolveModel(
  table: Map<string, ModelRoute>,
  model: string,
  key: AuthenticatedKey,
): ModelRoute {
  const route = table.get(model);
  if (!route) {
    throw new GatewayError('model_not_found', `The model '${printable(model, 64)}' does not exist`, {
      param: 'model',
    });
  }
  if (key.allowedModels !== null && !key.allowedModels.has(model)) {
    throw new GatewayError('model_not_allowed', `This key is not allowed to use the model '${model}'`, {
      param: 'model',
    });
  }
  return route;
}

/** Models visible to a key, for GET /v1/models. */
export function visibleModels(table: Map<string, ModelRoute>, key: AuthenticatedKey): ModelRoute[] {
  const routes = [...table.values()];
  return key.allowedModels === null ? routes : routes.filter((r) => key.allowedModels!.has(r.name));
}
