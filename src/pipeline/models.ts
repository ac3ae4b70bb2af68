/**
 * The model table: client-facing model names → ordered upstream targets,
 * resolved once at start so the hot path only does a Map lookup.
 */

import type { AuthenticatedKey } from '../auth/key-store.ts';
import type { Config, ModelConfig } from '../config/schema.ts';
import { GatewayError } from '../core/errors.ts';
import type { ProviderAdapter, Timeouts } from '../providers/types.ts';

export interface RouteTarget {
  /** Stable identity for breakers, metrics, logs and admin: `<provider>/<upstream model>`. */
  id: string;
  provider: ProviderAdapter;
  /** The upstream model id. */
  model: string;
  weight: number;
}

export interface ModelRoute {
  name: string;
  config: ModelConfig;
  targets: RouteTarget[];
  timeouts: Timeouts;
  created: number;
}

export function buildModelTable(
  config: Config,
  providers: Map<string, ProviderAdapter>,
): Map<string, ModelRoute> {
  const created = Math.floor(Date.now() / 1000);
  const table = new Map<string, ModelRoute>();
  for (const [name, model] of Object.entries(config.models)) {
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
      targets: model.targets.map((t) => ({
        id: `${t.provider}/${t.model}`,
        provider: providers.get(t.provider)!,
        model: t.model,
        weight: t.weight,
      })),
    });
  }
  return table;
}

/** The route for `model`, or 404; 403 if the key may not use it. */
export function resolveModel(
  table: Map<string, ModelRoute>,
  model: string,
  key: AuthenticatedKey,
): ModelRoute {
  const route = table.get(model);
  if (!route) {
    throw new GatewayError('model_not_found', `The model '${truncate(model)}' does not exist`, {
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

function truncate(text: string): string {
  // Echo a bounded, printable version only (no log/response injection).
  const printable = text.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 64 ? `${printable.slice(0, 64)}…` : printable;
}
