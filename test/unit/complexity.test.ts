/**
 * The complexity estimator against a fixed labelled set: 10 small, 10 medium
 * and 10 large prompts, each classified with the default thresholds
 * (small ≤ 3 < medium ≤ 6 < large). Plus the complexity strategy's ordering
 * and its decision headers.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AuthenticatedKey } from '../../src/auth/key-store.ts';
import { validateConfig } from '../../src/config/load.ts';
import type { ChatMessage, ChatRequest } from '../../src/core/types.ts';
import { createProviders } from '../../src/providers/registry.ts';
import { complexityScore, tierOf } from '../../src/routing/complexity-score.ts';
import { buildModelTable } from '../../src/routing/model-table.ts';
import { Router } from '../../src/routing/router.ts';

type Label = 'small' | 'medium' | 'large';

interface Case {
  label: Label;
  prompt: string;
  /** Extra request fields (tools, max_tokens) or earlier turns. */
  extra?: Partial<ChatRequest>;
  history?: ChatMessage[];
}

const TOOLS: ChatRequest['tools'] = [
  { type: 'function', function: { name: 'search', parameters: { type: 'object' } } },
  { type: 'function', function: { name: 'fetch_page', parameters: { type: 'object' } } },
  { type: 'function', function: { name: 'run_sql', parameters: { type: 'object' } } },
  { type: 'function', function: { name: 'send_email', parameters: { type: 'object' } } },
];

const CODE_SNIPPET = `\`\`\`python
def merge(a, b):
    out = []
    while a and b:
        out.append(a.pop(0) if a[0] < b[0] else b.pop(0))
    return out + a + b
\`\`\``;

const LONG_CONTEXT =
  'The service receives order events from the storefront, enriches them with customer data, and writes them to the warehouse. '.repeat(
    12,
  );

const history = (turns: number): ChatMessage[] =>
  Array.from({ length: turns }, (_, i) => ({
    role: i % 2 === 0 ? 'user' : 'assistant',
    content: i % 2 === 0 ? `Question ${i} about the plan.` : `Answer ${i}: noted.`,
  }));

const CASES: Case[] = [
  // small: short lookups, chit-chat, one-line transformations
  { label: 'small', prompt: 'What is the capital of France?' },
  { label: 'small', prompt: 'Translate "good morning" into German.' },
  { label: 'small', prompt: 'hi!' },
  { label: 'small', prompt: 'Give me a synonym for "happy".' },
  { label: 'small', prompt: 'How many days are there in a leap year?' },
  { label: 'small', prompt: 'Summarize in one sentence: the meeting moved to Thursday at 3pm.' },
  { label: 'small', prompt: 'Is 17 a prime number?' },
  { label: 'small', prompt: 'Write a haiku about autumn leaves.' },
  { label: 'small', prompt: 'Convert 5 miles to kilometres.' },
  { label: 'small', prompt: 'What does HTTP status 404 mean?' },
  // medium: a focused coding task, a comparison, a tool call, a longer brief
  {
    label: 'medium',
    prompt: 'Write a Python function that checks whether a string is a palindrome, ignoring case.',
  },
  {
    label: 'medium',
    prompt:
      'Compare PostgreSQL and MongoDB for an e-commerce product catalog, and list the pros and cons of each for a small team.',
  },
  { label: 'medium', prompt: 'Explain why the sky is blue, step by step, for a curious ten-year-old.' },
  {
    label: 'medium',
    prompt: 'Find the latest exchange rate for EUR to USD and tell me.',
    extra: { tools: TOOLS.slice(0, 2) },
  },
  {
    label: 'medium',
    prompt: 'Debug this: my React component re-renders forever when I call setState inside useEffect.',
  },
  {
    label: 'medium',
    prompt:
      'Analyze the sentiment of these customer reviews and give an overall score: great, slow, fine, loved it.',
  },
  {
    label: 'medium',
    prompt: 'Write a SQL query that returns the top five customers by total order value last month.',
  },
  {
    label: 'medium',
    prompt: `Here is our context. ${LONG_CONTEXT} Summarize what the service does in three bullet points.`,
  },
  {
    label: 'medium',
    prompt: 'Given everything we discussed, which option should we pick for the launch?',
    history: history(8),
    extra: { max_tokens: 1500 },
  },
  {
    label: 'medium',
    prompt: 'Design a logo concept for a coffee shop called Bean There and describe it in words.',
  },
  // large: proofs, system design, multi-part code review, agentic tool use with long answers
  {
    label: 'large',
    prompt:
      'Prove that there are infinitely many primes, step by step, then compare the proof by Euclid with the proof via the divergence of the sum of prime reciprocals.',
  },
  {
    label: 'large',
    prompt: `Review this code, analyze its time complexity, and refactor it to be O(n):\n${CODE_SNIPPET}`,
  },
  {
    label: 'large',
    prompt:
      'Design the architecture of a multi-region payment ledger: analyze the consistency trade-offs, compare event sourcing with a classic double-entry schema, and justify your choice.',
  },
  {
    label: 'large',
    prompt:
      'Research our three competitors, compare their pricing pages, and draft an analysis for the board.',
    extra: { tools: TOOLS, max_tokens: 4000 },
  },
  {
    label: 'large',
    prompt: `Implement a thread-safe LRU cache in Rust with generics and unit tests; explain why each lock is needed.\n\`\`\`rust\nstruct Cache<K, V> { map: HashMap<K, V> }\n\`\`\``,
  },
  {
    label: 'large',
    prompt: `Derive the closed form of the Fibonacci sequence using generating functions, and prove it by induction step by step.`,
    extra: { max_tokens: 4000 },
  },
  {
    label: 'large',
    prompt: `${LONG_CONTEXT}\nGiven this pipeline, design a migration to streaming, evaluate the failure modes, and compare Kafka with Pulsar for it.`,
  },
  {
    label: 'large',
    prompt: `Debug this: the merge below sometimes returns unsorted output. Analyze why and write the fixed function with tests.\n${CODE_SNIPPET}`,
  },
  {
    label: 'large',
    prompt:
      'Now write the complete design document: analyze the trade-offs we discussed, compare the two architectures, and justify the recommendation.',
    history: history(14),
    extra: { max_tokens: 8000 },
  },
  {
    label: 'large',
    prompt:
      'Optimize this query plan and explain why the planner chose a nested loop: SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.total > 100; then design the indexes and evaluate their write cost.',
  },
];

function requestOf(c: Case): ChatRequest {
  return {
    model: 'auto',
    messages: [...(c.history ?? []), { role: 'user', content: c.prompt }],
    ...c.extra,
  };
}

const THRESHOLDS = { smallMax: 3, mediumMax: 6 };

describe('complexity estimator', () => {
  test('the labelled set has 10 prompts per tier', () => {
    for (const label of ['small', 'medium', 'large'] as const) {
      assert.equal(CASES.filter((c) => c.label === label).length, 10);
    }
  });

  CASES.forEach((c, index) => {
    test(`#${index} is ${c.label}: ${c.prompt.slice(0, 50)}`, () => {
      const score = complexityScore(requestOf(c));
      assert.ok(score >= 0 && score <= 10);
      assert.equal(tierOf(score, THRESHOLDS), c.label, `score ${score}`);
    });
  });

  test('embeddings score 0', () => {
    assert.equal(complexityScore({ model: 'e', input: 'prove step by step' }), 0);
  });
});

describe('complexity strategy', () => {
  const config = validateConfig({
    providers: { mock: { type: 'mock' } },
    models: {
      auto: {
        strategy: 'complexity',
        complexity: { small_max: 2, medium_max: 5 },
        targets: [
          { provider: 'mock', model: 'big', tier: 'large' },
          { provider: 'mock', model: 'any' },
          { provider: 'mock', model: 'mini', tier: 'small' },
          { provider: 'mock', model: 'mid', tier: 'medium' },
        ],
      },
    },
  });
  const table = buildModelTable(config, createProviders(config.providers));
  const router = new Router(table);
  const who = { key: { tier: null, metadata: {} } as unknown as AuthenticatedKey, headers: {} };

  test('small requests go to the small tier first, then up a size, untiered last', () => {
    const decision = router.decide(table.get('auto')!, requestOf(CASES[0]!), who);
    assert.deepEqual(
      decision.candidates.map((t) => t.model),
      ['mini', 'mid', 'big', 'any'],
    );
    assert.deepEqual(decision.headers, {
      'x-switchyard-complexity': '0',
      'x-switchyard-tier': 'small',
      'x-switchyard-complexity-confidence': '1',
      'x-switchyard-complexity-classifier': 'heuristic',
    });
    assert.deepEqual(decision.log, { complexity: 0, tier: 'small', confidence: 1, classifier: 'heuristic' });
  });

  test('thresholds come from config: medium is (small_max, medium_max]', () => {
    const request = requestOf(CASES[12]!); // explain why + step by step
    const score = complexityScore(request);
    assert.ok(score > 2 && score <= 5, `score ${score}`);
    const decision = router.decide(table.get('auto')!, request, who);
    assert.deepEqual(
      decision.candidates.map((t) => t.model),
      ['mid', 'big', 'mini', 'any'],
    );
    assert.equal(decision.headers['x-switchyard-tier'], 'medium');
  });

  test('large requests: large, then medium, then small', () => {
    const decision = router.decide(table.get('auto')!, requestOf(CASES[22]!), who);
    assert.deepEqual(
      decision.candidates.map((t) => t.model),
      ['big', 'mid', 'mini', 'any'],
    );
    assert.equal(decision.headers['x-switchyard-tier'], 'large');
  });
});
