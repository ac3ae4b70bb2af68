/**
 * Complexity routing as a classifier: the labelled sets (shape, split), the
 * built-in heuristic's done-when on the held-out part, the safety valve
 * (uncertain goes up, key-tier floors, disagreeing classifiers), the config
 * that selects classifiers, and the nearest-neighbour classifier.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { AuthenticatedKey } from '../../src/auth/key-store.ts';
import { LexicalEmbedder } from '../../src/cache/semantic/lexical-embedder.ts';
import { validateConfig } from '../../src/config/load.ts';
import type { ChatRequest } from '../../src/core/types.ts';
import { createProviders } from '../../src/providers/registry.ts';
import type { ComplexityClassifier, ComplexityVerdict } from '../../src/routing/complexity/classifier.ts';
import { evaluateClassifier } from '../../src/routing/complexity/evaluation.ts';
import { heuristicClassifier, verdictForScore } from '../../src/routing/complexity/heuristic-classifier.ts';
import { labelledRequest, readLabelledSet } from '../../src/routing/complexity/labelled-set.ts';
import { NearestNeighbourClassifier } from '../../src/routing/complexity/nearest-neighbour.ts';
import { type ComplexityPolicy, decideComplexity } from '../../src/routing/complexity/safety-valve.ts';
import type { ComplexityTier } from '../../src/routing/model-table.ts';
import { buildModelTable } from '../../src/routing/model-table.ts';
import { Router } from '../../src/routing/router.ts';

const dev = readLabelledSet('dev');
const heldout = readLabelledSet('heldout');

const policy = (
  classifiers: ComplexityClassifier[],
  extra: Partial<ComplexityPolicy> = {},
): ComplexityPolicy => ({
  smallMax: 3,
  mediumMax: 6,
  classifiers,
  minConfidence: 0.8,
  floorByKeyTier: {},
  ...extra,
});

/** A classifier that always answers the same verdict. */
const fixed = (
  name: string,
  verdict: Partial<ComplexityVerdict> & { tier: ComplexityTier },
): ComplexityClassifier => ({
  name,
  classify: () => ({ score: 5, confidence: 1, alternative: undefined, ...verdict }),
});

const ask = (content: string): ChatRequest => ({ model: 'auto', messages: [{ role: 'user', content }] });

describe('labelled sets', () => {
  test('at least 300 prompts, at least 100 held out, every tier in both parts, each with a reason', () => {
    assert.ok(dev.length + heldout.length >= 300, `${dev.length + heldout.length} prompts`);
    assert.ok(heldout.length >= 100, `${heldout.length} held out`);
    for (const part of [dev, heldout]) {
      for (const tier of ['small', 'medium', 'large'] as const) {
        assert.ok(part.filter((e) => e.tier === tier).length >= 30, `${tier}: too few`);
      }
      for (const e of part) assert.ok(e.reason.trim().length > 0, `${e.id} has no reason`);
    }
  });

  test('ids are unique and no prompt is in both parts', () => {
    const ids = new Set([...dev, ...heldout].map((e) => e.id));
    assert.equal(ids.size, dev.length + heldout.length);
    const devPrompts = new Set(dev.map((e) => e.prompt));
    for (const e of heldout) assert.ok(!devPrompts.has(e.prompt), `${e.id} is also in dev`);
  });

  test('several languages, multi-turn conversations and tool use are covered', () => {
    const all = [...dev, ...heldout];
    assert.ok(all.filter((e) => (e.history?.length ?? 0) > 0).length >= 10);
    assert.ok(all.filter((e) => (e.tools?.length ?? 0) > 0).length >= 10);
    const nonLatin = all.filter((e) =>
      /[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af\u0400-\u04ff]/.test(e.prompt),
    );
    assert.ok(nonLatin.length >= 10, `${nonLatin.length} prompts in CJK or Cyrillic scripts`);
  });

  test('a malformed line is refused with its file and line number', () => {
    const dir = mkdtempSync(join(tmpdir(), 'labelled-'));
    try {
      const file = join(dir, 'set.jsonl');
      writeFileSync(
        file,
        '{"id":"a","tier":"small","reason":"r","prompt":"p"}\n{"id":"b","tier":"huge","reason":"r","prompt":"p"}\n',
      );
      assert.throws(() => readLabelledSet(file), /set\.jsonl:2: expected tier small\|medium\|large/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a labelled prompt becomes the chat request it stands for', () => {
    const request = labelledRequest({
      id: 'x',
      tier: 'large',
      reason: 'r',
      prompt: 'go',
      history: [{ role: 'user', content: 'before' }],
      tools: ['search'],
      max_tokens: 4000,
    });
    assert.deepEqual(
      request.messages.map((m) => m.content),
      ['before', 'go'],
    );
    assert.equal(request.tools?.[0]?.function.name, 'search');
    assert.equal(request.max_tokens, 4000);
  });
});

describe("built-in heuristic on the held-out part (the issue's done-when)", () => {
  const routed = heldout.map(
    (e) => decideComplexity(labelledRequest(e), null, policy([heuristicClassifier])).tier,
  );
  const report = evaluateClassifier(heldout, routed);

  test('large-tier recall ≥ 0.9: hard work reaches the large model', () => {
    assert.ok(report.perTier.large.recall >= 0.9, `large recall ${report.perTier.large.recall}`);
  });

  test('small-tier precision ≥ 0.9: what goes to the small model is really simple', () => {
    assert.ok(report.perTier.small.precision >= 0.9, `small precision ${report.perTier.small.precision}`);
  });

  test("the issue's kinds of hard requests all reach large", () => {
    const hard = [
      'Design a multi-region deployment for our checkout API with automatic failover, and explain what happens to in-flight payments when a region dies.',
      'Prove that every finite group of prime order is cyclic.',
      'Derive the maximum likelihood estimator for the rate of a Poisson distribution and show it is unbiased.',
      'This Rust code has a race between the reader and the writer thread. Find it, fix it, and add tests that fail before the fix.\n```rust\nstatic mut COUNT: u32 = 0;\n```',
      'Plan a zero-downtime migration from MongoDB to PostgreSQL for our user service, including dual writes and a rollback path.',
      'Write a threat model for our public file-sharing service: assets, attackers, entry points and mitigations.',
      'Alice has twice as many apples as Bob; together they have 27 after Bob gives away 3. How many did each start with? Then generalize it into an algorithm for any such linear puzzle.',
    ];
    for (const prompt of hard) {
      assert.equal(decideComplexity(ask(prompt), null, policy([heuristicClassifier])).tier, 'large', prompt);
    }
  });

  test('simple one-liners stay small', () => {
    for (const prompt of [
      'What is the capital of Peru?',
      'Translate "thank you" into German.',
      'hi',
      '2 + 2?',
    ]) {
      assert.equal(decideComplexity(ask(prompt), null, policy([heuristicClassifier])).tier, 'small', prompt);
    }
  });
});

describe('heuristic confidence', () => {
  test('0.5 on a threshold, 1 a point or more away; the alternative is across the nearest threshold', () => {
    assert.deepEqual(verdictForScore(3, { smallMax: 3, mediumMax: 6 }), {
      tier: 'small',
      score: 3,
      confidence: 0.5,
      alternative: 'medium',
    });
    assert.equal(verdictForScore(1, { smallMax: 3, mediumMax: 6 }).confidence, 1);
    assert.deepEqual(verdictForScore(5.5, { smallMax: 3, mediumMax: 6 }), {
      tier: 'medium',
      score: 5.5,
      confidence: 0.75,
      alternative: 'large',
    });
    assert.equal(verdictForScore(3.5, { smallMax: 3, mediumMax: 6 }).alternative, 'small');
  });
});

describe('safety valve', () => {
  test('an uncertain verdict goes up to its larger alternative', () => {
    const decision = decideComplexity(
      ask('x'),
      null,
      policy([fixed('f', { tier: 'small', confidence: 0.6, alternative: 'medium' })]),
    );
    assert.equal(decision.tier, 'medium');
    assert.equal(decision.classified, 'small');
    assert.equal(decision.raised, 'uncertain');
  });

  test('an uncertain verdict never goes down', () => {
    const decision = decideComplexity(
      ask('x'),
      null,
      policy([fixed('f', { tier: 'medium', confidence: 0.55, alternative: 'small' })]),
    );
    assert.equal(decision.tier, 'medium');
    assert.equal(decision.raised, undefined);
  });

  test('min_confidence 0 turns the valve off', () => {
    const decision = decideComplexity(
      ask('x'),
      null,
      policy([fixed('f', { tier: 'small', confidence: 0.5, alternative: 'medium' })], { minConfidence: 0 }),
    );
    assert.equal(decision.tier, 'small');
  });

  test("a key tier's floor lifts its requests, and only its requests", () => {
    const p = policy([fixed('f', { tier: 'small' })], { floorByKeyTier: { enterprise: 'medium' } });
    const enterprise = decideComplexity(ask('x'), 'enterprise', p);
    assert.equal(enterprise.tier, 'medium');
    assert.equal(enterprise.raised, 'floor');
    assert.equal(decideComplexity(ask('x'), 'free', p).tier, 'small');
    assert.equal(decideComplexity(ask('x'), null, p).tier, 'small');
    // A floor below the classified tier changes nothing.
    const large = decideComplexity(
      ask('x'),
      'enterprise',
      policy([fixed('f', { tier: 'large' })], { floorByKeyTier: p.floorByKeyTier }),
    );
    assert.equal(large.tier, 'large');
    assert.equal(large.raised, undefined);
  });

  test('classifiers that disagree: the larger tier wins, with the lower confidence', () => {
    const decision = decideComplexity(
      ask('x'),
      null,
      policy([
        fixed('a', { tier: 'small', confidence: 0.9 }),
        fixed('b', { tier: 'large', confidence: 0.95 }),
      ]),
    );
    assert.equal(decision.tier, 'large');
    assert.equal(decision.classified, 'small');
    assert.equal(decision.raised, 'disagreement');
    assert.equal(decision.confidence, 0.9);
    assert.equal(decision.classifier, 'a+b');
  });
});

describe('config and router', () => {
  const key = (tier: string | null) => ({
    key: { tier, metadata: {} } as unknown as AuthenticatedKey,
    headers: {},
  });
  const setup = (
    complexity: Record<string, unknown>,
    options: ConstructorParameters<typeof Router>[1] = {},
  ) => {
    const config = validateConfig({
      providers: { mock: { type: 'mock' } },
      models: {
        auto: {
          strategy: 'complexity',
          complexity,
          targets: [
            { provider: 'mock', model: 'mini', tier: 'small' },
            { provider: 'mock', model: 'mid', tier: 'medium' },
            { provider: 'mock', model: 'big', tier: 'large' },
          ],
        },
      },
    });
    const table = buildModelTable(config, createProviders(config.providers));
    return { router: new Router(table, options), route: table.get('auto')! };
  };

  test('floor_by_tier lifts an enterprise key to medium; headers and log say why', () => {
    const { router, route } = setup({ floor_by_tier: { enterprise: 'medium' } });
    const decision = router.decide(route, ask('What is the capital of France?'), key('enterprise'));
    assert.deepEqual(
      decision.candidates.map((t) => t.model),
      ['mid', 'big', 'mini'],
    );
    assert.equal(decision.headers['x-switchyard-tier'], 'medium');
    assert.equal(decision.headers['x-switchyard-complexity-raised'], 'floor:small');
    assert.equal(decision.headers['x-switchyard-complexity-confidence'], '1');
    assert.equal(decision.log?.['raised'], 'floor');
    assert.equal(decision.log?.['classified_tier'], 'small');
    const free = router.decide(route, ask('What is the capital of France?'), key('free'));
    assert.equal(free.headers['x-switchyard-tier'], 'small');
  });

  test('a bad floor or classifier is refused at load with the valid choices', () => {
    assert.throws(() => setup({ floor_by_tier: { enterprise: 'huge' } }), /expected small, medium or large/);
    assert.throws(() => setup({ classifier: 'oracle' }), /expected heuristic, nearest-neighbour or judge/);
    assert.throws(() => setup({ min_confidence: 2 }), /min_confidence/);
  });

  test('nearest-neighbour without a supplied classifier is a clear error, with one it is used', () => {
    assert.throws(
      () => setup({ classifier: 'nearest-neighbour' }),
      /models\.auto\.complexity\.classifier: 'nearest-neighbour' is not available here/,
    );
    const embedder = new LexicalEmbedder();
    let built = 0;
    const { router, route } = setup(
      { classifier: ['heuristic', 'nearest-neighbour'] },
      {
        complexityClassifiers: {
          'nearest-neighbour': () => {
            built++;
            return new NearestNeighbourClassifier({ embed: (t) => embedder.embedNow(t), examples: dev });
          },
        },
      },
    );
    const decision = router.decide(route, ask('Prove that the square root of 3 is irrational.'), key(null));
    assert.equal(decision.headers['x-switchyard-complexity-classifier'], 'heuristic+nearest-neighbour');
    assert.equal(decision.headers['x-switchyard-tier'], 'large');
    router.decide(route, ask('hello'), key(null));
    assert.equal(built, 1, 'built once, when first needed');
  });
});

describe('nearest-neighbour classifier', () => {
  const embedder = new LexicalEmbedder();
  const nearest = new NearestNeighbourClassifier({ embed: (t) => embedder.embedNow(t), examples: dev, k: 1 });

  test('with k = 1 a development prompt is classified as its own label', () => {
    for (const e of dev.slice(0, 40)) {
      assert.equal(nearest.classify(labelledRequest(e), { smallMax: 3, mediumMax: 6 }).tier, e.tier, e.id);
    }
  });

  test('a unanimous vote is fully confident; the score sits in the tier band', () => {
    const verdict = nearest.classify(labelledRequest(dev[0]!), { smallMax: 3, mediumMax: 6 });
    assert.equal(verdict.confidence, 1);
    assert.ok(verdict.score <= 3, `score ${verdict.score}`);
  });

  test('an empty labelled set is refused', () => {
    assert.throws(
      () => new NearestNeighbourClassifier({ embed: () => new Float32Array(1), examples: [] }),
      /no labelled examples/,
    );
  });
});
