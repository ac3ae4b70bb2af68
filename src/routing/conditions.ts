/**
 * Conditional routes (`models.<name>.routes`): rules that restrict a model to
 * some of its targets depending on who is asking — the key's tier, its
 * metadata, or request headers. E.g. `free` keys only reach local targets.
 *
 * Rules are tried in order and the first whose `when` fully matches wins; with
 * no match every target stays eligible. Each rule's target subset is computed
 * once at start, so matching allocates nothing per request.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { AuthenticatedKey } from '../auth/key-store.ts';
import { selects } from '../config/route-selector.ts';
import type { RouteRuleConfig } from '../config/routing-schema.ts';
import type { RouteEntry } from './model-table.ts';

export interface RouteCaller {
  key: AuthenticatedKey;
  headers: IncomingHttpHeaders;
}

type Scalar = string | number | boolean;

interface CompiledRule {
  keyTiers: readonly string[] | undefined;
  metadata: ReadonlyArray<[string, readonly Scalar[]]>;
  headers: ReadonlyArray<[string, readonly string[]]>;
  entries: RouteEntry[];
}

export class RouteConditions {
  readonly #rules: CompiledRule[];

  constructor(rules: readonly RouteRuleConfig[], entries: readonly RouteEntry[]) {
    this.#rules = rules.map((rule) => ({
      keyTiers: rule.when.key_tier === undefined ? undefined : asList(rule.when.key_tier),
      metadata: Object.entries(rule.when.key_metadata ?? {}).map(([k, v]) => [k, asList(v)]),
      headers: Object.entries(rule.when.headers ?? {}).map(([k, v]) => [k.toLowerCase(), asList(v)]),
      entries: entries.filter((entry) => rule.targets.some((selector) => selects(entry, selector))),
    }));
  }

  get empty(): boolean {
    return this.#rules.length === 0;
  }

  /** The entries the first matching rule allows, or undefined when no rule matches. */
  select(caller: RouteCaller): RouteEntry[] | undefined {
    for (const rule of this.#rules) if (matches(rule, caller)) return rule.entries;
    return undefined;
  }
}

function matches(rule: CompiledRule, caller: RouteCaller): boolean {
  if (rule.keyTiers !== undefined) {
    const tier = caller.key.tier;
    if (tier === null || !rule.keyTiers.includes(tier)) return false;
  }
  for (const [field, accepted] of rule.metadata) {
    const value = caller.key.metadata[field];
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return false;
    if (!accepted.includes(value)) return false;
  }
  for (const [name, accepted] of rule.headers) {
    const value = caller.headers[name];
    if (typeof value !== 'string' || !accepted.includes(value)) return false;
  }
  return true;
}

function asList<T>(value: T | T[]): T[] {
  return Array.isArray(value) ? value : [value];
}
