/**
 * `least-latency`: prefer the target that has been answering fastest.
 *
 * Each target's score is its EWMA time to first token for streaming requests
 * (what a streaming user waits for) and its EWMA latency otherwise; a group
 * scores as its fastest member. Picking the single best target for every
 * request would stampede it (its latency rises only after the damage), so the
 * first target comes from power-of-two-choices: draw two at random, keep the
 * faster. A small share of requests (EXPLORE) picks uniformly at random so a
 * slow target is re-measured and can win back traffic once it recovers, and
 * a target with no samples yet scores best, so new targets get measured at
 * once. The remaining targets follow fastest first.
 */

import type { LatencyTracker } from '../latency.ts';
import type { RouteEntry } from '../model-table.ts';
import { isChatRequest } from '../request-features.ts';
import type { RoutingStrategy, StrategyContext } from './types.ts';

/** Share of requests whose first target is drawn uniformly at random. */
export const EXPLORE = 0.05;

const UNKNOWN = -1;

function scoreOf(entry: RouteEntry, latency: LatencyTracker, stream: boolean): number {
  let best = Number.POSITIVE_INFINITY;
  for (const target of entry.leaves) {
    const stats = latency.get(target.id);
    if (stats === undefined) return UNKNOWN;
    const value = stream && stats.ttftMs !== undefined ? stats.ttftMs : stats.latencyMs;
    if (value === undefined) return UNKNOWN;
    if (value < best) best = value;
  }
  return best;
}

export const leastLatencyStrategy: RoutingStrategy = {
  name: 'least-latency',
  order(entries: readonly RouteEntry[], ctx: StrategyContext): readonly RouteEntry[] {
    const n = entries.length;
    if (n < 2) return entries;
    const stream = isChatRequest(ctx.request) && ctx.request.stream === true;
    const scores = new Array<number>(n);
    for (let i = 0; i < n; i++) scores[i] = scoreOf(entries[i]!, ctx.latency, stream);

    let first: number;
    if (ctx.random() < EXPLORE) {
      first = Math.floor(ctx.random() * n);
    } else {
      const a = Math.floor(ctx.random() * n);
      let b = Math.floor(ctx.random() * (n - 1));
      if (b >= a) b++;
      first = scores[b]! < scores[a]! ? b : a;
    }
    const rest: number[] = [];
    for (let i = 0; i < n; i++) if (i !== first) rest.push(i);
    rest.sort((x, y) => scores[x]! - scores[y]!);
    const out: RouteEntry[] = [entries[first]!];
    for (const i of rest) out.push(entries[i]!);
    return out;
  },
};
