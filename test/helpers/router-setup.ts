/**
 * A Router over mock providers, for unit tests: seeded randomness, a caller
 * with a chosen key tier and metadata, and the ids of a decision's candidates.
 */
import type { AuthenticatedKey } from '../../src/auth/key-store.ts';
import { validateConfig } from '../../src/config/load.ts';
import type { ChatRequest } from '../../src/core/types.ts';
import { createProviders } from '../../src/providers/registry.ts';
import { buildModelTable, type ModelRoute } from '../../src/routing/model-table.ts';
import { Router, type RouterOptions } from '../../src/routing/router.ts';
import { seededRandom } from '../../src/util/random.ts';

export const PROVIDERS = {
  a: { type: 'mock' },
  b: { type: 'mock' },
  c: { type: 'mock' },
  local: { type: 'mock' },
};

export function setup(models: Record<string, unknown>, options: RouterOptions = {}) {
  const config = validateConfig({ providers: PROVIDERS, models });
  const table = buildModelTable(config, createProviders(config.providers));
  const router = new Router(table, { random: seededRandom(42), ...options });
  const route = (name: string): ModelRoute => table.get(name)!;
  return { router, table, route };
}

export function key(tier: string | null = null, metadata: Record<string, unknown> = {}): AuthenticatedKey {
  return {
    id: 'key_test',
    name: 'test',
    tier,
    allowedModels: null,
    metadata,
    expiresAt: null,
    isMaster: false,
    limits: null,
    budget: null,
    teamId: null,
  };
}

export const CALLER = { key: key(), headers: {} };
export const HELLO: ChatRequest = { model: 'm', messages: [{ role: 'user', content: 'hello' }] };

export function ids(router: Router, route: ModelRoute, request: ChatRequest = HELLO, who = CALLER): string[] {
  return router.decide(route, request, who).candidates.map((t) => t.id);
}
