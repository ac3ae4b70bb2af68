/**
 * Router micro-benchmark: microseconds per `decide()` for each strategy, with
 * 20 targets per model (10 tiered small/large for `complexity`; prices,
 * capabilities and rpm limits declared so cost and shedding do their work),
 * on one thread, after a warm-up. Run alone: `node bench/router.ts`.
 */
import type { AuthenticatedKey } from '../src/auth/key-store.ts';
import { validateConfig } from '../src/config/load.ts';
import type { ChatRequest } from '../src/core/types.ts';
import { createProviders } from '../src/providers/registry.ts';
import { buildModelTable } from '../src/routing/model-table.ts';
import { Router } from '../src/routing/router.ts';
import { seededRandom } from '../src/util/random.ts';

export interface RouterBenchResult {
  strategy: string;
  targets: number;
  iterations: number;
  usPerDecide: number;
}

const STRATEGIES = ['fallback', 'weighted', 'least-latency', 'cost', 'complexity'] as const;
const TARGETS = 20;

function targets() {
  return Array.from({ length: TARGETS }, (_, i) => ({
    provider: 'mock',
    model: `model-${i}`,
    weight: 1 + (i % 5),
    tier: i % 2 === 0 ? 'small' : 'large',
    input_per_mtok: 0.1 * (1 + ((i * 7) % 20)),
    output_per_mtok: 0.4 * (1 + ((i * 7) % 20)),
    context_window: 128_000,
    tools: i % 3 !== 0,
    limits: { rpm: 10_000 },
  }));
}

export function benchRouter(iterations = 200_000): RouterBenchResult[] {
  const models: Record<string, unknown> = {};
  for (const strategy of STRATEGIES) models[strategy] = { strategy, targets: targets() };
  const config = validateConfig({ providers: { mock: { type: 'mock' } }, models });
  const table = buildModelTable(config, createProviders(config.providers));
  const router = new Router(table, { random: seededRandom(1) });
  const who = {
    key: {
      id: 'k',
      name: 'k',
      tier: 'pro',
      allowedModels: null,
      metadata: {},
      expiresAt: null,
      isMaster: false,
    } as AuthenticatedKey,
    headers: {},
  };
  const request: ChatRequest = {
    model: 'bench',
    max_tokens: 256,
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      {
        role: 'user',
        content: 'Compare two approaches to caching HTTP responses and explain the trade-offs.',
      },
    ],
  };
  for (const target of table.get('least-latency')!.targets) {
    router.onAttemptEnd(target, { ok: true, latencyMs: 100 + Math.random() * 50 });
  }
  const results: RouterBenchResult[] = [];
  let sink = 0;
  for (const strategy of STRATEGIES) {
    const route = table.get(strategy)!;
    for (let i = 0; i < 20_000; i++) sink += router.decide(route, request, who).candidates.length;
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink += router.decide(route, request, who).candidates.length;
    const ns = Number(process.hrtime.bigint() - start);
    results.push({ strategy, targets: TARGETS, iterations, usPerDecide: ns / iterations / 1000 });
  }
  if (sink === 0) throw new Error('unreachable: decisions returned no candidates');
  return results;
}

if (import.meta.main) {
  for (const r of benchRouter()) {
    console.log(
      `${r.strategy.padEnd(14)} ${r.usPerDecide.toFixed(2).padStart(7)} µs/decide  (${r.targets} targets, ${r.iterations} iterations)`,
    );
  }
}
