/**
 * `fallback`: the targets in config order; the first is always tried first.
 */
import type { RouteEntry } from '../model-table.ts';
import type { RoutingStrategy } from './types.ts';

export const fallbackStrategy: RoutingStrategy = {
  name: 'fallback',
  order(entries: readonly RouteEntry[]): readonly RouteEntry[] {
    return entries;
  },
};
