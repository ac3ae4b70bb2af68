/**
 * The response cache's costs and what it saves, in one process:
 * - lookup µs per request (key + hash + memory tier) on a miss and on a hit,
 *   for a ~1 KB chat body, beside a request that bypasses the cache;
 * - a replay of 10,000 chat requests through a gateway (built-in mock
 *   provider, memory tier), prompts drawn from a Zipf distribution over 1,000
 *   questions, one in eight reworded lightly (punctuation, filler: what the
 *   lexical embedder is built to match) and one in eight rephrased (other
 *   words: what it is not), run twice: exact cache only, then with the
 *   semantic tier: hit rate per tier and upstream calls saved.
 *
 * Run alone: node bench/cache.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryCacheStore } from '../src/cache/memory-cache-store.ts';
import { RequestCache } from '../src/cache/request-cache.ts';
import { ResponseCache } from '../src/cache/response-cache.ts';
import { normalize } from '../src/cache/semantic/embedder.ts';
import { LexicalEmbedder } from '../src/cache/semantic/lexical-embedder.ts';
import { VectorIndex } from '../src/cache/semantic/vector-index.ts';
import { validateConfig } from '../src/config/load.ts';
import { createLogger } from '../src/observability/logger.ts';
import { Gateway } from '../src/server/gateway.ts';
import { seededRandom } from '../src/util/random.ts';

export interface IndexCell {
  prompts: number;
  /** µs per nearest-prompt query, flat scan and hashing tables. */
  flatUs: number;
  approximateUs: number;
  /** Share of queries (each a planted neighbour at cosine ~0.97) whose neighbour each finds. */
  flatRecall: number;
  approximateRecall: number;
}

export interface CacheBench {
  lookupUs: { bypass: number; miss: number; hit: number };
  semanticIndex: IndexCell[];
  replay: { exact: ReplayResult; semantic: ReplayResult };
}

export interface ReplayResult {
  requests: number;
  distinctQuestions: number;
  /** Share of requests worded otherwise than the question's first wording. */
  rewordedShare: number;
  hitRate: number;
  /** Exact hits by the tier that held the answer, and semantic hits. */
  hitsByTier: Record<string, number>;
  upstreamCalls: number;
  upstreamCallsSaved: number;
}

/** A question's wordings: as first asked, lightly reworded, rephrased. */
const WORDINGS = [
  (n: number) => `What is the capital of country number ${n}?`,
  (n: number) => `Please, what's the capital of country number ${n}`,
  (n: number) => `Which city is the capital of country number ${n}?`,
];
/** Of every eight requests: six as first asked, one lightly reworded, one rephrased. */
const WORDING_CYCLE = [0, 0, 0, 1, 0, 0, 0, 2];

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
  // Seeded: reproducible runs.
  const random = seededRandom(seed);
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

async function benchReplay(semantic: boolean): Promise<ReplayResult> {
  const REQUESTS = 10_000;
  const QUESTIONS = 1000;
  const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-bench-cache-'));
  const config = validateConfig({
    master_key: 'sk-bench-cache-master-0123456789',
    data_dir: dataDir,
    providers: { mock: { type: 'mock' } },
    models: {
      fast: {
        targets: [{ provider: 'mock', model: 'mock-1' }],
        cache: { enabled: true, semantic: { enabled: semantic } },
      },
    },
  });
  const gateway = await Gateway.create({ config, logger: createLogger({ level: 'silent' }) });
  const draw = zipfSampler(QUESTIONS, 42);
  try {
    for (let i = 0; i < REQUESTS; i++) {
      const question = WORDINGS[WORDING_CYCLE[i % WORDING_CYCLE.length]!]!(draw());
      const res = await gateway.app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        headers: { authorization: `Bearer ${config.master_key}`, 'content-type': 'application/json' },
        payload: chatBody(question),
      });
      if (res.statusCode !== 200) throw new Error(`replay request failed: ${res.statusCode}`);
    }
    const stats = gateway.context.cache!.stats;
    // A semantic hit also counts as a hit of the tier that held its answer.
    const semanticHits = gateway.context.semantic?.stats.hits ?? 0;
    const hits = stats.hits.memory + stats.hits.redis;
    const rounded = (x: number) => Math.round(x * 1000) / 1000;
    return {
      requests: REQUESTS,
      distinctQuestions: QUESTIONS,
      rewordedShare: rounded(WORDING_CYCLE.filter((w) => w !== 0).length / WORDING_CYCLE.length),
      hitRate: rounded(hits / REQUESTS),
      hitsByTier: {
        memory: stats.hits.memory - semanticHits,
        redis: stats.hits.redis,
        semantic: semanticHits,
      },
      upstreamCalls: REQUESTS - hits,
      upstreamCallsSaved: hits,
    };
  } finally {
    await gateway.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The semantic index at 1,000 to 30,000 prompts in one partition (lexical
 * vectors of distinct prompts), queried with 200 planted neighbours: an
 * indexed vector plus noise, cosine ~0.97, above the default 0.95.
 */
function benchSemanticIndex(): IndexCell[] {
  const embedder = new LexicalEmbedder();
  const random = seededRandom(7);
  const cells: IndexCell[] = [];
  for (const n of [1_000, 2_048, 10_000, 30_000]) {
    const vectors = Array.from({ length: n }, (_, i) =>
      embedder.embedNow(`question ${i} about topic ${i % 113} regarding item ${i % 17} in region ${i % 29}`),
    );
    const queries = Array.from({ length: 200 }, () => {
      const target = Math.floor(random() * n);
      const noise = normalize(Float32Array.from(vectors[target]!, () => random() - 0.5));
      const query = Float32Array.from(vectors[target]!, (x, i) => x + 0.25 * noise[i]!);
      return { target, query: normalize(query) };
    });
    const measure = (approximateAbove: number) => {
      const index = new VectorIndex({ maxEntries: n, approximateAbove });
      vectors.forEach((vector, i) => {
        index.add({
          key: { model: 'm', scope: 's', hash: String(i) },
          partition: 'p',
          vector,
          expiresAt: Infinity,
        });
      });
      let found = 0;
      const started = performance.now();
      for (const { target, query } of queries) {
        if (index.nearest('p', query, 0.95, 0)?.prompt.key.hash === String(target)) found++;
      }
      const us = ((performance.now() - started) * 1000) / queries.length;
      return { us: Math.round(us * 10) / 10, recall: found / queries.length };
    };
    const flat = measure(Number.POSITIVE_INFINITY);
    const approximate = measure(0);
    cells.push({
      prompts: n,
      flatUs: flat.us,
      approximateUs: approximate.us,
      flatRecall: flat.recall,
      approximateRecall: approximate.recall,
    });
  }
  return cells;
}

export async function benchCache(): Promise<CacheBench> {
  return {
    lookupUs: await benchLookups(),
    semanticIndex: benchSemanticIndex(),
    replay: { exact: await benchReplay(false), semantic: await benchReplay(true) },
  };
}

export function cacheLines(r: CacheBench): string[] {
  const line = (name: string, p: ReplayResult) =>
    `cache replay, ${name.padEnd(15)} hit rate ${(p.hitRate * 100).toFixed(1)}% (memory ${p.hitsByTier['memory']}, redis ${p.hitsByTier['redis']}, semantic ${p.hitsByTier['semantic']}), upstream calls ${p.upstreamCalls}, saved ${p.upstreamCallsSaved}`;
  const e = r.replay.exact;
  return [
    `cache lookup CPU µs/request          bypass ${r.lookupUs.bypass}, miss ${r.lookupUs.miss}, hit ${r.lookupUs.hit} (1 KB chat body, memory tier)`,
    `cache replay: ${e.requests} requests, Zipf over ${e.distinctQuestions} questions, ${(e.rewordedShare * 100).toFixed(0)}% reworded (half lightly, half rephrased)`,
    line('exact only', e),
    line('with semantic', r.replay.semantic),
    ...r.semanticIndex.map(
      (c) =>
        `semantic index, ${String(c.prompts).padStart(6)} prompts   flat ${c.flatUs} µs (recall ${(c.flatRecall * 100).toFixed(1)}%), hashing tables ${c.approximateUs} µs (recall ${(c.approximateRecall * 100).toFixed(1)}%)`,
    ),
  ];
}

if (import.meta.main) {
  const results = await benchCache();
  console.log(cacheLines(results).join('\n'));
}
