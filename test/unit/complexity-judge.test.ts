/**
 * The complexity judge (src/routing/complexity/judge.ts) with a stand-in for
 * the judge model: its prompt and strict answer parsing, that its verdict is
 * used, cached per key by prompt hash (TTL, LRU bound, one call in flight),
 * and that a late, failing or rambling judge falls back to the heuristic;
 * then the Router's async step and the config that selects it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AuthenticatedKey } from '../../src/auth/key-store.ts';
import { validateConfig } from '../../src/config/load.ts';
import type { ChatRequest } from '../../src/core/types.ts';
import { createProviders } from '../../src/providers/registry.ts';
import { type JudgeAsk, JudgeClassifier } from '../../src/routing/complexity/judge.ts';
import {
  JUDGE_INSTRUCTIONS,
  judgePromptHash,
  judgeRequestFor,
  parseJudgeAnswer,
} from '../../src/routing/complexity/judge-prompt.ts';
import { type ComplexityPolicy, decideComplexity } from '../../src/routing/complexity/safety-valve.ts';
import type { RouteCaller } from '../../src/routing/conditions.ts';
import { buildModelTable } from '../../src/routing/model-table.ts';
import { Router } from '../../src/routing/router.ts';

const ask = (content: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
  model: 'auto',
  messages: [{ role: 'user', content }],
  ...extra,
});
const caller = (id: string, isMaster = false): RouteCaller => ({
  key: { id, isMaster, tier: null, metadata: {}, teamId: null } as unknown as AuthenticatedKey,
  headers: {},
});
const policyOf = (judge: JudgeClassifier, extra: Partial<ComplexityPolicy> = {}): ComplexityPolicy => ({
  smallMax: 3,
  mediumMax: 6,
  classifiers: [judge],
  minConfidence: 0.8,
  floorByKeyTier: {},
  ...extra,
});
const live = () => new AbortController().signal;

/** A judge model stand-in: answers `answer(prompt)`, counts its calls and what it was sent. */
function standIn(answer: (judgeRequest: ChatRequest) => string | Promise<string>) {
  const calls: Array<{ request: ChatRequest; caller: RouteCaller }> = [];
  const fn: JudgeAsk = async (request, context) => {
    calls.push({ request, caller: context.caller });
    return { text: await answer(request), costMicros: 25 };
  };
  return { fn, calls };
}

/** Prepare then decide, as the server does. */
async function judged(judge: JudgeClassifier, request: ChatRequest, who = caller('k1')) {
  await judge.prepare(request, { caller: who, signal: live() });
  return decideComplexity(request, who.key.tier, policyOf(judge));
}

describe('judge prompt', () => {
  test('the request is shown as data with the facts the heuristic weighs; the instructions are the labelling rule', () => {
    const request = judgeRequestFor(
      ask('Plan the migration.', {
        tools: [{ type: 'function', function: { name: 'run_sql' } }],
        max_tokens: 4000,
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
          { role: 'user', content: 'Plan the migration.' },
        ],
      }),
    );
    assert.equal(request.messages[0]?.content, JUDGE_INSTRUCTIONS);
    assert.match(JUDGE_INSTRUCTIONS, /exactly one word: small, medium or large/);
    assert.equal(
      request.messages[1]?.content,
      '<request>\nPlan the migration.\n</request>\nEarlier turns in the conversation: 2.\nTools offered: run_sql.\nAnswer limit: 4000 tokens.',
    );
    assert.equal(request.max_tokens, 16);
  });

  test('a long prompt is cut to its beginning and end, so the judge costs a bounded amount', () => {
    const long = `BEGIN ${'word '.repeat(20_000)} END`;
    const content = String(judgeRequestFor(ask(long)).messages[1]?.content);
    assert.ok(content.length < 6000, `${content.length} characters`);
    assert.match(content, /^<request>\nBEGIN /);
    assert.match(content, /END\n<\/request>$/);
    assert.match(content, /\[\.\.\. \d+ characters omitted \.\.\.\]/);
  });

  test('the cache key is a hash of the prompt, not the prompt', () => {
    const a = judgePromptHash(judgeRequestFor(ask('secret plan for Q3')));
    assert.equal(a, judgePromptHash(judgeRequestFor(ask('secret plan for Q3'))));
    assert.notEqual(a, judgePromptHash(judgeRequestFor(ask('secret plan for Q4'))));
    assert.doesNotMatch(a, /secret/);
    assert.match(a, /^[\w-]{43}$/);
  });

  test('answers are parsed strictly: one word or {"tier": ...}, nothing else', () => {
    for (const [text, tier] of [
      ['small', 'small'],
      [' Large\n', 'large'],
      ['"medium".', 'medium'],
      ['**large**', 'large'],
      ['{"tier":"Small"}', 'small'],
    ] as const) {
      assert.equal(parseJudgeAnswer(text), tier, text);
    }
    for (const text of [
      '',
      'medium-ish',
      'probably large',
      'large, because it needs a proof',
      'small medium',
      '{"tier":"huge"}',
      '{"tier":"large","why":"x"}',
      '["large"]',
      '{"tier":',
      'tiny',
    ]) {
      assert.equal(parseJudgeAnswer(text), undefined, text);
    }
  });
});

describe('judge classifier', () => {
  test("the judge's answer decides the tier, with confidence 0.9 and its outcome, latency and cost in the log", async () => {
    const model = standIn(() => 'large');
    const judge = new JudgeClassifier({ ask: model.fn, timeoutMs: 1000 });
    const decision = await judged(judge, ask('What is the capital of France?'));
    assert.equal(decision.tier, 'large', 'the judge overrides what the heuristic would say (small)');
    assert.equal(decision.classifier, 'judge');
    assert.equal(decision.confidence, 0.9);
    assert.equal(decision.score, 8);
    assert.equal(decision.log?.['judge'], 'asked');
    assert.equal(decision.log?.['judge_cost_usd'], 0.000025);
    assert.equal(typeof decision.log?.['judge_ms'], 'number');
    assert.equal(model.calls.length, 1);
    assert.match(String(model.calls[0]!.request.messages[1]!.content), /What is the capital of France\?/);
  });

  test('a second identical prompt from the same key is answered from the cache: no call', async () => {
    const model = standIn(() => 'medium');
    const judge = new JudgeClassifier({ ask: model.fn, timeoutMs: 1000 });
    await judged(judge, ask('Summarize this paragraph.'));
    const again = await judged(judge, ask('Summarize this paragraph.'));
    assert.equal(model.calls.length, 1);
    assert.equal(again.tier, 'medium');
    assert.equal(again.classifier, 'judge');
    assert.equal(again.log?.['judge'], 'cached');
    assert.equal(again.log?.['judge_cost_usd'], undefined, 'a cached verdict cost nothing');
  });

  test('the cache is per key: another key asks (and pays) for itself', async () => {
    const model = standIn(() => 'small');
    const judge = new JudgeClassifier({ ask: model.fn, timeoutMs: 1000 });
    await judged(judge, ask('hello there'), caller('k1'));
    await judged(judge, ask('hello there'), caller('k2'));
    await judged(judge, ask('hello there'), caller('master', true));
    await judged(judge, ask('hello there'), caller('k2'));
    assert.deepEqual(
      model.calls.map((c) => c.caller.key.id),
      ['k1', 'k2', 'master'],
    );
  });

  test('entries expire after their TTL, and the least recently used go first when full', async () => {
    let now = 0;
    const model = standIn(() => 'small');
    const judge = new JudgeClassifier({
      ask: model.fn,
      timeoutMs: 1000,
      cacheTtlMs: 1000,
      cacheEntries: 2,
      now: () => now,
    });
    await judged(judge, ask('a'));
    now = 999;
    await judged(judge, ask('a'));
    assert.equal(model.calls.length, 1, 'still fresh');
    now = 2000;
    await judged(judge, ask('a'));
    assert.equal(model.calls.length, 2, 'expired: asked again');
    await judged(judge, ask('b'));
    await judged(judge, ask('a')); // a is now the most recently used
    await judged(judge, ask('c')); // evicts b
    assert.equal(judge.cached, 2);
    await judged(judge, ask('a'));
    assert.equal(model.calls.length, 4, 'a stayed');
    await judged(judge, ask('b'));
    assert.equal(model.calls.length, 5, 'b was evicted');
  });

  test('identical prompts in flight at once make one call', async () => {
    let release!: (text: string) => void;
    const model = standIn(() => new Promise<string>((resolve) => (release = resolve)));
    const judge = new JudgeClassifier({ ask: model.fn, timeoutMs: 5000 });
    const first = ask('Prove it.');
    const second = ask('Prove it.');
    const both = Promise.all([
      judge.prepare(first, { caller: caller('k1'), signal: live() }),
      judge.prepare(second, { caller: caller('k1'), signal: live() }),
    ]);
    release('large');
    await both;
    assert.equal(model.calls.length, 1);
    const policy = policyOf(judge);
    assert.equal(decideComplexity(first, null, policy).log?.['judge'], 'asked');
    assert.equal(decideComplexity(second, null, policy).log?.['judge'], 'cached');
    assert.equal(decideComplexity(second, null, policy).tier, 'large');
  });

  test('a judge that hangs past the timeout: the heuristic decides, as judge->heuristic', async () => {
    let signalSeen: AbortSignal | undefined;
    const judge = new JudgeClassifier({
      ask: (_request, context) => {
        signalSeen = context.signal;
        return new Promise(() => {}); // never answers, ignores its signal
      },
      timeoutMs: 30,
    });
    const decision = await judged(judge, ask('What is the capital of Peru?'));
    assert.equal(decision.classifier, 'judge->heuristic');
    assert.equal(decision.tier, 'small');
    assert.equal(decision.confidence, 1, "the heuristic's own confidence");
    assert.equal(decision.log?.['judge'], 'timeout');
    assert.equal(signalSeen?.aborted, true, 'the judge call was told to stop');
  });

  test('an answer that is not a tier is not a verdict: the heuristic decides; nothing is cached', async () => {
    const model = standIn(() => 'This request is of moderate difficulty.');
    const judge = new JudgeClassifier({ ask: model.fn, timeoutMs: 1000 });
    const prompt = 'Prove that there are infinitely many primes and derive a bound on the gaps.';
    const decision = await judged(judge, ask(prompt));
    assert.equal(decision.classifier, 'judge->heuristic');
    assert.equal(decision.tier, 'large');
    assert.equal(decision.log?.['judge'], 'invalid');
    assert.equal(decision.log?.['judge_cost_usd'], 0.000025, 'the call was still paid for');
    await judged(judge, ask(prompt));
    assert.equal(model.calls.length, 2);
  });

  test('a failing judge call: the heuristic decides', async () => {
    const judge = new JudgeClassifier({
      ask: async () => {
        throw new Error('upstream 503');
      },
      timeoutMs: 1000,
    });
    const decision = await judged(judge, ask('hi'));
    assert.equal(decision.classifier, 'judge->heuristic');
    assert.equal(decision.log?.['judge'], 'failed');
  });

  test('without prepare (or for embeddings) the heuristic decides, as not-asked', async () => {
    const model = standIn(() => 'large');
    const judge = new JudgeClassifier({ ask: model.fn, timeoutMs: 1000 });
    const unprepared = decideComplexity(ask('hi'), null, policyOf(judge));
    assert.equal(unprepared.classifier, 'judge->heuristic');
    assert.equal(unprepared.log?.['judge'], 'not-asked');
    const embedding = { model: 'e', input: 'text' };
    await judge.prepare(embedding, { caller: caller('k1'), signal: live() });
    assert.equal(decideComplexity(embedding, null, policyOf(judge)).classifier, 'judge->heuristic');
    assert.equal(model.calls.length, 0);
  });

  test('the client leaving stops the wait (prepare rejects with its reason); the answer is still cached', async () => {
    let release!: (text: string) => void;
    const model = standIn(() => new Promise<string>((resolve) => (release = resolve)));
    const judge = new JudgeClassifier({ ask: model.fn, timeoutMs: 5000 });
    const client = new AbortController();
    const waiting = judge.prepare(ask('Design a queue.'), { caller: caller('k1'), signal: client.signal });
    client.abort(new Error('client gone'));
    await assert.rejects(waiting, /client gone/);
    release('large');
    const decision = await judged(judge, ask('Design a queue.'));
    assert.equal(decision.log?.['judge'], 'cached');
    assert.equal(model.calls.length, 1);
  });

  test('the safety valve applies on top: above 0.9 a judged tier goes one up; floors still lift', async () => {
    const model = standIn(() => 'small');
    const judge = new JudgeClassifier({ ask: model.fn, timeoutMs: 1000 });
    const request = ask('hi');
    await judge.prepare(request, { caller: caller('k1'), signal: live() });
    const strict = decideComplexity(request, null, policyOf(judge, { minConfidence: 0.95 }));
    assert.equal(strict.tier, 'medium');
    assert.equal(strict.raised, 'uncertain');
    const floored = decideComplexity(
      request,
      'enterprise',
      policyOf(judge, { floorByKeyTier: { enterprise: 'large' } }),
    );
    assert.equal(floored.tier, 'large');
    assert.equal(floored.raised, 'floor');
  });
});

describe('judge in config and the router', () => {
  const config = (complexity: Record<string, unknown>, extraModels: Record<string, unknown> = {}) =>
    validateConfig({
      providers: { mock: { type: 'mock' } },
      models: {
        cheap: { targets: [{ provider: 'mock', model: 'gpt-4o-mini' }] },
        plain: { targets: [{ provider: 'mock', model: 'm' }] },
        auto: {
          strategy: 'complexity',
          complexity,
          targets: [
            { provider: 'mock', model: 'mini', tier: 'small' },
            { provider: 'mock', model: 'big', tier: 'large' },
          ],
        },
        ...extraModels,
      },
    });

  test('classifier judge needs judge.model, a model of this gateway, not itself, not a judge-user', () => {
    assert.throws(() => config({ classifier: 'judge' }), /classifier judge needs judge: \{ model/);
    assert.throws(
      () => config({ classifier: 'judge', judge: { model: 'nope' } }),
      /models\.auto\.complexity\.judge\.model: 'nope' is not a model of this gateway/,
    );
    assert.throws(
      () => config({ classifier: 'judge', judge: { model: 'auto' } }),
      /a model cannot judge its own requests/,
    );
    assert.throws(
      () =>
        config(
          { classifier: 'judge', judge: { model: 'picky' } },
          {
            picky: {
              strategy: 'complexity',
              complexity: { classifier: 'judge', judge: { model: 'cheap' } },
              targets: [{ provider: 'mock', model: 'x', tier: 'small' }],
            },
          },
        ),
      /'picky' asks a judge itself/,
    );
    assert.throws(
      () => config({ classifier: 'judge', judge: { model: 'cheap', timeout_ms: 0 } }),
      /positive number for timeout_ms/,
    );
    const ok = config({ classifier: ['heuristic', 'judge'], judge: { model: 'cheap' } });
    assert.deepEqual(ok.models['auto']!.complexity.judge, {
      model: 'cheap',
      timeout_ms: 1500,
      cache_ttl_s: 3600,
      cache_entries: 10_000,
    });
  });

  test('Router.prepare runs the judge for models that use it (and their groups), then decide uses it', async () => {
    const parsed = config(
      { classifier: 'judge', judge: { model: 'cheap' } },
      { outer: { targets: [{ group: 'auto' }] } },
    );
    const table = buildModelTable(parsed, createProviders(parsed.providers));
    const model = standIn(() => 'large');
    const built: string[] = [];
    const router = new Router(table, {
      complexityClassifiers: {
        judge: {
          forModel: (name, c) => {
            built.push(`${name}:${c.judge?.model}`);
            return new JudgeClassifier({ ask: model.fn, timeoutMs: 1000 });
          },
        },
      },
    });
    assert.deepEqual(built, ['auto:cheap']);
    const who = caller('k1');
    assert.equal(router.prepares(table.get('plain')!), false);
    assert.equal(router.prepare(table.get('plain')!, ask('hi'), who, live()), undefined);
    assert.equal(router.prepares(table.get('outer')!), true, 'a group that judges makes its parent prepare');
    const request = ask('hi');
    await router.prepare(table.get('auto')!, request, who, live());
    const decision = router.decide(table.get('auto')!, request, who);
    assert.equal(decision.headers['x-switchyard-complexity-classifier'], 'judge');
    assert.equal(decision.headers['x-switchyard-tier'], 'large');
    assert.deepEqual(
      decision.candidates.map((t) => t.model),
      ['big', 'mini'],
    );
    assert.equal(decision.log?.['judge'], 'asked');
  });

  test('without a judge source the model is refused with a clear error', () => {
    const parsed = config({ classifier: 'judge', judge: { model: 'cheap' } });
    assert.throws(
      () => new Router(buildModelTable(parsed, createProviders(parsed.providers))),
      /models\.auto\.complexity\.classifier: 'judge' is not available here/,
    );
  });
});
