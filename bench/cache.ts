/**
 * The response cache's costs and what it saves, in one process:
 * - lookup µs per request (key + hash + memory tier) on a miss and on a hit,
 *   for a ~1 KB chat body, beside a request that bypasses the cache;
 * - a replay of 10,000 chat requests through a gateway (built-in mock
 *   provider, memory tier), prompts drawn from a Zipf distribution over 1,000
 *   questions, a quarter of them reworded (a paraphrase the exact cache must
 *   miss): hit rate per tier and upstream calls saved.
 *
 * Run alone: node bench/cache.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryCacheStore } from '../src/cache/memory-cache-store.ts';
import { RequestCache } from '../src/cache/request-cache.ts';
import { ResponseCache } from '../src/cache/response-cache.ts';
import { validateConfig } from '../src/config/load.ts';
import { createLogger } from '../src/observability/logger.ts';
import { Gateway } from '../src/server/gateway.ts';

export interface CacheBench {
  lookupUs: { bypass: number; miss: number; hit: number };
  replay: {
    requests: number;
    distinctQuestions: number;
    paraphraseShare: number;
    hitRate: number;
    hitsByTier: Record<string, number>;
    upstreamCalls: number;
    upstreamCallsSaved: number;
  };
}

const SETTINGS = { enabled: true, ttl_s: 3600, scope: 'key' as const };
const KEY = { id: 'key_bench', isMaster: false };
const signal = new AbortController().signal;

function chatBody(question: string): object {
  return {
    model: 'fast',
    temperature: 0.2,
    max_tokens: 256,
    messages: [
      { role: 'system', content: 'You are a concise assistant. '.repeat(20) },
      { role: 'user', content: question },
    ],
  };
}

async function perOp(n: number, op: (i: number) => Promise<void>): Promise<number> {
  for (let i = 0; i < 2000; i++) await op(i);
  const started = process.cpuUsage();
  for (let i = 0; i < n; i++) await op(i);
  const used = process.cpuUsage(started);
  return Math.round(((used.user + used.system) / n) * 100) / 100;
}

async function benchLookups(): Promise<CacheBench['lookupUs']> {
  const cache = new ResponseCache([new MemoryCacheStore({ maxBytes: 256 << 20 })]);
  const bodies = Array.from({ length: 1000 }, (_, i) =>
    chatBody(`What is the capital of country number ${i}?`),
  );
  const open = (i: number, enabled: boolean) =>
    new RequestCache(cache, {
      api: 'chat',
      body: bodies[i % bodies.length]!,
      model: 'fast',
      settings: { ...SETTINGS, enabled },
      key: KEY,
      headers: {},
    });
  const bypass = await perOp(50_000, async (i) => {
    const cached = open(i, false);
    if (cached.active) await cached.lookup(signal);
  });
  let round = 0;
  const miss = await perOp(50_000, async (i) => {
    // A new body each time: nothing stored, every lookup a miss (and given up, as a failed answer is).
    const cached = new RequestCache(cache, {
      api: 'chat',
      body: { ...bodies[i % bodies.length]!, seed: round++ },
      model: 'fast',
      settings: SETTINGS,
      key: KEY,
      headers: {},
    });
    await cached.lookup(signal);
    cached.abandon();
  });
  for (let i = 0; i < bodies.length; i++) {
    const cached = open(i, true);
    await cached.lookup(signal);
    cached.store({ answer: 'x' }, { prompt_tokens: 100, completion_tokens: 20 });
  }
  const hit = await perOp(50_000, async (i) => {
    const cached = open(i, true);
    if ((await cached.lookup(signal)) === undefined) throw new Error('expected a hit');
  });
  return { bypass, miss, hit };
}

/** Zipf(s=1) over `n` ranks: rank r drawn with probability ∝ 1/r (deterministic generator). */
function zipfSampler(n: number, seed: number): () => number {
  const weights = Array.from({ length: n }, (_, r) => 1 / (r + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const cumulative: number[] = [];
  let sum = 0;
  for (const w of weights) {
    sum += w / total;
    cumulative.push(sum);
  }
  let state = seed;
  const random = () => {
    // mulberry32: reproducible runs.
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    const x = random();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] ?? 1) < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

async function benchReplay(): Promise<CacheBench['replay']> {
  const REQUESTS = 10_000;
  const QUESTIONS = 1000;
  const PARAPHRASE_SHARE = 0.25;
  const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-bench-cache-'));
  const config = validateConfig({
    master_key: 'sk-bench-cache-master-0123456789',
    data_dir: dataDir,
    providers: { mock: { type: 'mock' } },
    models: { fast: { targets: [{ provider: 'mock', model: 'mock-1' }], cache: { enabled: true } } },
  });
  const gateway = await Gateway.create({ config, logger: createLogger({ level: 'silent' }) });
  const draw = zipfSampler(QUESTIONS, 42);
  let paraphraseTick = 0;
  try {
    for (let i = 0; i < REQUESTS; i++) {
      const rank = draw();
      // Every fourth request words its question differently (as users do).
      const reworded = paraphraseTick++ % Math.round(1 / PARAPHRASE_SHARE) === 0;
      const question = reworded
        ? `Could you tell me the capital of country number ${rank}?`
        : `What is the capital of country number ${rank}?`;
      const res = await gateway.app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        headers: { authorization: `Bearer ${config.master_key}`, 'content-type': 'application/json' },
        payload: chatBody(question),
      });
      if (res.statusCode !== 200) throw new Error(`replay request failed: ${res.statusCode}`);
    }
    const stats = gateway.context.cache!.stats;
    const hits = stats.hits.memory + stats.hits.redis;
    return {
      requests: REQUESTS,
      distinctQuestions: QUESTIONS,
      paraphraseShare: PARAPHRASE_SHARE,
      hitRate: Math.round((hits / REQUESTS) * 1000) / 1000,
      hitsByTier: { ...stats.hits },
      upstreamCalls: stats.misses,
      upstreamCallsSaved: hits,
    };
  } finally {
    await gateway.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function benchCache(): Promise<CacheBench> {
  return { lookupUs: await benchLookups(), replay: await benchReplay() };
}

export function cacheLines(r: CacheBench): string[] {
  const p = r.replay;
  return [
    `cache lookup CPU µs/request          bypass ${r.lookupUs.bypass}, miss ${r.lookupUs.miss}, hit ${r.lookupUs.hit} (1 KB chat body, memory tier)`,
    `cache replay (Zipf, ${p.requests} requests)   hit rate ${(p.hitRate * 100).toFixed(1)}% (memory ${p.hitsByTier['memory']}, redis ${p.hitsByTier['redis']}), upstream calls ${p.upstreamCalls}, saved ${p.upstreamCallsSaved}; ${p.distinctQuestions} questions, ${p.paraphraseShare * 100}% reworded`,
  ];
}

if (import.meta.main) {
  const results = await benchCache();
  console.log(cacheLines(results).join('\n'));
}
