/**
 * How well the built-in lexical embedder (src/cache/semantic/lexical-embedder.ts)
 * tells "same question" from "different question", measured on a labelled set
 * of prompt pairs such as an LLM app sees.
 *
 * - `same` pairs should be served one cached answer. The easy kinds differ in
 *   case, punctuation, filler, contractions, inflection, the place of function
 *   words; the hard kinds (`synonym`, `restructure`) change the words, which a
 *   lexical embedder is expected to miss. They stay in the set so that recall
 *   is honest, not a measure of the easy cases only.
 * - `differ` pairs must not be: the same template about another city, number,
 *   date, person, language, unit; a negation; a swapped direction; another
 *   operation; another entity in a long template.
 *
 * The test prints precision and recall at 0.85, 0.90 and 0.95 (0.95 is the
 * cache's default threshold) with per-category counts, and fails when, at
 * 0.95, a near-miss of a guarded category hits, or precision or recall fall
 * below the floors measured when this file was written.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cosine } from '../../src/cache/semantic/embedder.ts';
import {
  contentWords,
  LEXICAL_DIMENSIONS,
  LexicalEmbedder,
} from '../../src/cache/semantic/lexical-embedder.ts';

interface Pair {
  readonly tag: string;
  /** True when both prompts should be served the same answer. */
  readonly same: boolean;
  readonly a: string;
  readonly b: string;
}

const same = (tag: string, a: string, b: string): Pair => ({ tag, same: true, a, b });
const differ = (tag: string, a: string, b: string): Pair => ({ tag, same: false, a, b });

/** The cache's default threshold, and two looser ones printed for information. */
const DEFAULT_THRESHOLD = 0.95;
const THRESHOLDS = [0.85, 0.9, DEFAULT_THRESHOLD];

/**
 * Near-miss categories where a single hit at the default threshold fails the
 * test: every one but `operation`, whose long-payload pair (one adjective in
 * 20 words) sits just under the threshold, the known limit of a bag of words;
 * the precision floor still catches it.
 */
const GUARDED = new Set([
  'city',
  'number',
  'date',
  'person',
  'language',
  'unit',
  'negation',
  'direction',
  'entity',
]);
/** Kinds of should-hit pair that change the words: a lexical embedder is not expected to match them. */
const HARD = new Set(['synonym', 'restructure']);
/**
 * Floors at the default threshold: the values measured when this file was
 * written (precision 1.00, recall 30/50 = 0.60, easy recall 29/34 = 0.85),
 * rounded down a little.
 */
const MIN_PRECISION = 0.95;
const MIN_RECALL = 0.57;
const MIN_EASY_RECALL = 0.82;

const PAIRS: readonly Pair[] = [
  // --- Should hit: easy (the words are the same up to form) ----------------
  same('case', 'What is the capital of France?', 'what is the capital of france?'),
  same('case', 'How do I reverse a linked list in Python?', 'HOW DO I REVERSE A LINKED LIST IN PYTHON?'),
  same('case', 'Explain OAuth2 refresh tokens', 'explain oauth2 refresh tokens'),
  same('case', 'Summarize the plot of Hamlet', 'summarize the Plot of hamlet'),
  same('case', 'Best Practices For Kubernetes Secrets', 'best practices for kubernetes secrets'),

  same(
    'punctuation',
    "What's the difference between TCP and UDP?",
    "what's the difference between TCP and UDP",
  ),
  same('punctuation', 'Write a haiku about autumn.', 'write a haiku about autumn!!!'),
  same('punctuation', 'How do I center a div in CSS?', 'how do i center a div in css ???'),
  same('punctuation', 'Translate "good morning" into Spanish', "translate 'good morning' into spanish."),
  same('punctuation', 'Python: how to read a CSV file?', 'python - how to read a csv file'),

  same(
    'filler',
    'Can you please explain what a closure is in JavaScript?',
    'Explain what a closure is in JavaScript',
  ),
  same('filler', 'Hi! Could you tell me how to install Docker on Ubuntu?', 'How to install Docker on Ubuntu'),
  same(
    'filler',
    'Please write a SQL query that counts users by country',
    'Write a SQL query that counts users by country, thanks',
  ),
  same(
    'filler',
    'I was wondering, what is the boiling point of water?',
    'What is the boiling point of water?',
  ),
  same('filler', 'Hey, quick question: what does HTTP 404 mean?', 'What does HTTP 404 mean?'),
  same(
    'filler',
    'Kindly summarize this article about climate change for me.',
    'Summarize this article about climate change',
  ),

  same('contraction', "What's a monad?", 'What is a monad?'),
  same(
    'contraction',
    "I can't connect to my database, what should I check?",
    'I cannot connect to my database, what should I check?',
  ),
  same(
    'contraction',
    "It's not working: npm install fails with EACCES",
    'It is not working: npm install fails with EACCES',
  ),
  same('contraction', "Where're the nginx logs stored?", 'Where are the nginx logs stored?'),
  same(
    'contraction',
    "How'd you sort a dictionary by value in Python?",
    'How would you sort a dictionary by value in Python?',
  ),
  same('contraction', "Why doesn't my cron job run?", 'Why does not my cron job run?'),

  same('inflection', 'How do I reset my password?', 'how can i reset my passwords'),
  same(
    'inflection',
    'Sorting an array of objects by date in JavaScript',
    'sort array of object by dates in javascript',
  ),
  same('inflection', 'Best practices for writing unit tests', 'best practice for writing a unit test'),
  same('inflection', 'How to merge two dictionaries in Python', 'how to merge two dictionary in python'),
  same(
    'inflection',
    'How to handle errors in async functions',
    'how to handle an error in an async function',
  ),
  same('inflection', 'What causes memory leaks in Node.js?', 'What caused the memory leak in Node.js?'),
  same('inflection', 'Tips for improving my sleep', 'tips to improve my sleep'),

  same(
    'word-order',
    'Can you tell me what the weather is like in Tokyo today?',
    'What is the weather like in Tokyo today?',
  ),
  same('word-order', 'How can I undo the last git commit?', 'How do I undo the last git commit, can I?'),
  same(
    'word-order',
    'In Go, how do I convert a string to an int?',
    'How do I convert a string to an int in Go?',
  ),
  same('word-order', 'What is the default port for PostgreSQL?', "What is PostgreSQL's default port?"),
  same('word-order', 'What does the acronym NASA stand for?', 'NASA is an acronym for what?'),

  // --- Should hit: hard (the words change; a lexical embedder misses these) --
  same('synonym', 'How do I delete a branch in git?', 'How do I remove a git branch?'),
  same('synonym', 'How do I quit vim?', 'How do I exit vim?'),
  same('synonym', 'How big is the Pacific Ocean?', 'What is the size of the Pacific Ocean?'),
  same('synonym', "What's a good name for a coffee shop?", 'Suggest a name for a café'),
  same(
    'synonym',
    "Fix this error: ModuleNotFoundError: No module named 'requests'",
    "How to resolve ModuleNotFoundError: No module named 'requests'",
  ),
  same('synonym', 'Give me a recipe for chocolate chip cookies', 'How do I bake chocolate chip cookies?'),
  same('synonym', 'Is coffee bad for your health?', 'Is coffee unhealthy?'),
  same('synonym', 'How do I make my website load faster?', 'How can I speed up my website?'),

  same('restructure', 'What is the capital of France?', "Which city is France's capital?"),
  same('restructure', "Translate 'thank you' into Japanese", "How do you say 'thank you' in Japanese?"),
  same(
    'restructure',
    'Write a Python function that checks if a number is prime',
    'Python function to check whether a number is prime',
  ),
  same(
    'restructure',
    'Explain recursion to a five year old',
    'How would you explain recursion to a 5-year-old?',
  ),
  same('restructure', 'Who wrote Pride and Prejudice?', 'Pride and Prejudice was written by whom?'),
  same('restructure', 'What year did World War II end?', 'When did World War 2 end?'),
  same(
    'restructure',
    'Summarize the following text in three bullet points',
    'Give me a three bullet point summary of the following text',
  ),
  same(
    'restructure',
    'Can you recommend a laptop for programming under $1000?',
    "What's the best programming laptop I can buy for less than $1000?",
  ),

  // --- Must not hit: one thing changes the answer ---------------------------
  differ('city', 'What is the weather in Paris today?', 'What is the weather in London today?'),
  differ(
    'city',
    'Best restaurants in Rome for a family dinner',
    'Best restaurants in Milan for a family dinner',
  ),
  differ('city', 'What is the population of Tokyo?', 'What is the population of Osaka?'),
  differ('city', 'What time is it in Berlin right now?', 'What time is it in Chicago right now?'),
  differ(
    'city',
    'Plan a three day itinerary for Lisbon with museums and good food',
    'Plan a three day itinerary for Porto with museums and good food',
  ),

  differ('number', 'What is 15% of 200?', 'What is 15% of 300?'),
  differ('number', 'Convert 100 USD to EUR', 'Convert 1000 USD to EUR'),
  differ('number', 'Write a poem with 4 stanzas about the sea', 'Write a poem with 6 stanzas about the sea'),
  differ('number', 'Is 97 a prime number?', 'Is 91 a prime number?'),
  differ('number', 'Give me 5 ideas for a birthday party', 'Give me 10 ideas for a birthday party'),
  differ('number', 'Round 3.14159 to 2 decimal places', 'Round 3.14159 to 3 decimal places'),
  differ('number', 'Explain recursion to a 5 year old', 'Explain recursion to a 10 year old'),
  differ(
    'number',
    'Write a 300 word product description for a waterproof hiking backpack with a laptop sleeve',
    'Write a 500 word product description for a waterproof hiking backpack with a laptop sleeve',
  ),

  differ('date', 'Who won the World Cup in 2018?', 'Who won the World Cup in 2022?'),
  differ('date', 'What day of the week was March 3, 2020?', 'What day of the week was May 3, 2020?'),
  differ('date', 'Show my meetings for Monday', 'Show my meetings for Tuesday'),
  differ('date', "What's the weather tomorrow in Paris?", "What's the weather today in Paris?"),
  differ('date', 'Summarize the news from yesterday', 'Summarize the news from last week'),

  differ('person', "Who is Barack Obama's wife?", "Who is Joe Biden's wife?"),
  differ('person', 'Write a short biography of Marie Curie', 'Write a short biography of Albert Einstein'),
  differ('person', "What are Elon Musk's companies?", "What are Jeff Bezos's companies?"),
  differ(
    'person',
    'Draft an email to John asking for the Q3 report by Friday',
    'Draft an email to Sarah asking for the Q3 report by Friday',
  ),

  differ('language', "Translate 'good morning' into Spanish", "Translate 'good morning' into French"),
  differ(
    'language',
    'How do I read a file line by line in Python?',
    'How do I read a file line by line in Rust?',
  ),
  differ('language', 'Write a hello world program in Java', 'Write a hello world program in Kotlin'),
  differ('language', "How do you say 'thank you' in German?", "How do you say 'thank you' in Italian?"),

  differ('unit', 'Convert 5 miles to kilometers', 'Convert 5 miles to meters'),
  differ('unit', 'How many ounces in a pound?', 'How many grams in a pound?'),
  differ('unit', 'How many seconds in a day?', 'How many minutes in a day?'),
  differ('unit', 'What is 2 GB in megabytes?', 'What is 2 GB in gigabits?'),

  differ('negation', 'Which foods are safe for dogs?', 'Which foods are not safe for dogs?'),
  differ('negation', 'Why does my code work?', "Why doesn't my code work?"),
  differ('negation', 'List countries that use the euro', "List countries that don't use the euro"),
  differ('negation', 'Write a SQL query for users with orders', 'Write a SQL query for users without orders'),
  differ('negation', 'Should I take ibuprofen with food?', 'Should I take ibuprofen without food?'),
  differ(
    'negation',
    'Is it true that the Great Wall of China is visible from space with the naked eye?',
    'Is it true that the Great Wall of China is not visible from space with the naked eye?',
  ),
  differ(
    'negation',
    'My Kubernetes pods become ready after the rolling update and traffic reaches the new version, why?',
    'My Kubernetes pods never become ready after the rolling update and traffic reaches the new version, why?',
  ),

  differ('direction', 'Flights from Paris to London', 'Flights from London to Paris'),
  differ('direction', 'Convert USD to EUR', 'Convert EUR to USD'),
  differ(
    'direction',
    'Translate this sentence from English to German',
    'Translate this sentence from German to English',
  ),
  differ('direction', 'Convert 30 degrees Celsius to Fahrenheit', 'Convert 30 degrees Fahrenheit to Celsius'),
  differ(
    'direction',
    'How long is the drive from Boston to New York?',
    'How long is the drive from New York to Boston?',
  ),
  differ('direction', 'Is Python faster than Java?', 'Is Java faster than Python?'),
  differ(
    'direction',
    'Write a bash script that copies every file from the staging bucket to the production bucket',
    'Write a bash script that copies every file from the production bucket to the staging bucket',
  ),

  differ('operation', 'Convert 100 USD to EUR', 'Compare 100 USD to EUR'),
  differ('operation', 'Summarize this article', 'Translate this article'),
  differ('operation', 'Explain this code', 'Refactor this code'),
  differ('operation', 'Write unit tests for this function', 'Write documentation for this function'),
  differ('operation', 'Sort this list in ascending order', 'Sort this list in descending order'),
  differ(
    'operation',
    'Rewrite the following paragraph in a formal tone: our revenue grew twelve percent this quarter thanks to strong sales in Europe and Asia',
    'Rewrite the following paragraph in a casual tone: our revenue grew twelve percent this quarter thanks to strong sales in Europe and Asia',
  ),

  differ('entity', 'What are the side effects of ibuprofen?', 'What are the side effects of paracetamol?'),
  differ(
    'entity',
    'Write a cover letter for a junior data analyst position at a bank',
    'Write a cover letter for a junior data analyst position at a hospital',
  ),
  differ(
    'entity',
    'What is the difference between a Roth IRA and a traditional IRA?',
    'What is the difference between a Roth IRA and a 401k?',
  ),
  differ(
    'entity',
    'How do I configure retries with exponential backoff in the Axios HTTP client for a React app?',
    'How do I configure retries with exponential backoff in the Got HTTP client for a React app?',
  ),
  differ('entity', 'Recommend a book similar to Dune', 'Recommend a book similar to Foundation'),
];

const embedder = new LexicalEmbedder();

function similarity(pair: Pair): number {
  return cosine(embedder.embedNow(pair.a), embedder.embedNow(pair.b));
}

interface Score {
  readonly hits: number;
  readonly correctHits: number;
  readonly precision: number;
  readonly recall: number;
}

function score(scored: readonly { pair: Pair; sim: number }[], threshold: number): Score {
  const hits = scored.filter((s) => s.sim >= threshold);
  const correctHits = hits.filter((s) => s.pair.same).length;
  const shouldHit = scored.filter((s) => s.pair.same).length;
  return {
    hits: hits.length,
    correctHits,
    precision: hits.length === 0 ? 1 : correctHits / hits.length,
    recall: shouldHit === 0 ? 1 : correctHits / shouldHit,
  };
}

function table(scored: readonly { pair: Pair; sim: number }[]): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(7);
  const lines = ['threshold  hits  correct  precision  recall'];
  for (const t of THRESHOLDS) {
    const s = score(scored, t);
    lines.push(
      `${t.toFixed(2).padEnd(9)}  ${String(s.hits).padStart(4)}  ${String(s.correctHits).padStart(7)}  ${pct(s.precision).padStart(9)}  ${pct(s.recall)}`,
    );
  }
  lines.push(
    '',
    `category     kind       n  ${THRESHOLDS.map((t) => `hit@${t.toFixed(2)}`).join('  ')}  mean cos`,
  );
  const tags = [...new Set(scored.map((s) => s.pair.tag))];
  for (const tag of tags) {
    const group = scored.filter((s) => s.pair.tag === tag);
    const kind = group[0]!.pair.same ? 'same' : 'near-miss';
    const counts = THRESHOLDS.map((t) => String(group.filter((s) => s.sim >= t).length).padStart(8));
    const mean = group.reduce((sum, s) => sum + s.sim, 0) / group.length;
    lines.push(
      `${tag.padEnd(12)} ${kind.padEnd(9)} ${String(group.length).padStart(2)}  ${counts.join('  ')}  ${mean.toFixed(3).padStart(8)}`,
    );
  }
  return lines.join('\n');
}

describe('lexical embedder on labelled prompt pairs', () => {
  const scored = PAIRS.map((pair) => ({ pair, sim: similarity(pair) }));

  test('the labelled set is big enough to mean something', () => {
    assert.ok(PAIRS.filter((p) => p.same).length >= 40, 'at least 40 should-hit pairs');
    assert.ok(PAIRS.filter((p) => !p.same).length >= 40, 'at least 40 near-miss pairs');
    assert.ok(PAIRS.some((p) => p.tag === 'synonym') && PAIRS.some((p) => p.tag === 'restructure'));
  });

  test('precision and recall at the default threshold', () => {
    console.log(`\n${table(scored)}\n`);
    const misses = scored.filter((s) => s.pair.same && s.sim < DEFAULT_THRESHOLD);
    console.log(
      `should-hit pairs missed at ${DEFAULT_THRESHOLD}:\n${misses
        .map(
          (s) =>
            `  [${s.pair.tag}] ${s.sim.toFixed(3)}  ${JSON.stringify(s.pair.a)} ~ ${JSON.stringify(s.pair.b)}`,
        )
        .join('\n')}`,
    );
    const falseHits = scored.filter((s) => !s.pair.same && s.sim >= 0.85);
    console.log(
      `near-misses at or above 0.85:\n${falseHits
        .map(
          (s) =>
            `  [${s.pair.tag}] ${s.sim.toFixed(3)}  ${JSON.stringify(s.pair.a)} ~ ${JSON.stringify(s.pair.b)}`,
        )
        .join('\n')}`,
    );

    const { precision, recall } = score(scored, DEFAULT_THRESHOLD);
    const easy = score(
      scored.filter((s) => !HARD.has(s.pair.tag)),
      DEFAULT_THRESHOLD,
    );
    const hard = score(
      scored.filter((s) => HARD.has(s.pair.tag)),
      DEFAULT_THRESHOLD,
    );
    console.log(
      `recall at ${DEFAULT_THRESHOLD}: easy kinds ${easy.recall.toFixed(3)}, hard kinds (${[...HARD].join(', ')}) ${hard.recall.toFixed(3)}`,
    );
    assert.ok(precision >= MIN_PRECISION, `precision ${precision.toFixed(3)} < ${MIN_PRECISION}`);
    assert.ok(recall >= MIN_RECALL, `recall ${recall.toFixed(3)} < ${MIN_RECALL}`);
    assert.ok(
      easy.recall >= MIN_EASY_RECALL,
      `recall on easy kinds ${easy.recall.toFixed(3)} < ${MIN_EASY_RECALL}`,
    );
  });

  test(`no near-miss of a guarded category (${[...GUARDED].join(', ')}) hits at the default threshold`, () => {
    const leaks = scored.filter((s) => !s.pair.same && GUARDED.has(s.pair.tag) && s.sim >= DEFAULT_THRESHOLD);
    assert.deepEqual(
      leaks.map((s) => `[${s.pair.tag}] ${s.sim.toFixed(3)} ${s.pair.a} ~ ${s.pair.b}`),
      [],
      'these near-misses would be served each other’s answer',
    );
  });
});

describe('lexical embedder basics', () => {
  const norm = (v: Float32Array) => Math.sqrt(cosine(v, v));

  test('identical text has cosine 1', () => {
    for (const text of ['How do I reset my password?', 'Flights from Paris to London', 'x', '42']) {
      const a = embedder.embedNow(text);
      assert.ok(Math.abs(cosine(a, embedder.embedNow(text)) - 1) < 1e-6, text);
    }
  });

  test('vectors are unit length and of the advertised size', () => {
    for (const pair of PAIRS) {
      for (const text of [pair.a, pair.b]) {
        const v = embedder.embedNow(text);
        assert.equal(v.length, LEXICAL_DIMENSIONS);
        assert.ok(Math.abs(norm(v) - 1) < 1e-6, `|v| = ${norm(v)} for ${JSON.stringify(text)}`);
      }
    }
  });

  test('empty, whitespace-only, emoji-only and stop-word-only text give a vector without NaN', () => {
    for (const text of ['', '   \n\t ', '😀🎉👍', '🇫🇷', 'what is it?', '?!…']) {
      const v = embedder.embedNow(text);
      assert.equal(v.length, LEXICAL_DIMENSIONS);
      assert.ok(
        v.every((x) => Number.isFinite(x)),
        `non-finite component for ${JSON.stringify(text)}`,
      );
      const n = norm(v);
      assert.ok(n === 0 || Math.abs(n - 1) < 1e-6, `|v| = ${n} for ${JSON.stringify(text)}`);
      assert.ok(!Number.isNaN(cosine(v, embedder.embedNow('How do I reset my password?'))));
    }
  });

  test('deterministic across instances, and embed() agrees with embedNow()', async () => {
    const other = new LexicalEmbedder();
    for (const pair of PAIRS.slice(0, 20)) {
      assert.deepEqual(other.embedNow(pair.a), embedder.embedNow(pair.a));
      assert.deepEqual(await other.embed(pair.b), embedder.embedNow(pair.b));
    }
    assert.equal(other.name, embedder.name);
  });

  test('contentWords keeps the words that change an answer', () => {
    assert.deepEqual(contentWords("Why doesn't my code work?"), ['not', 'code', 'work']);
    assert.deepEqual(contentWords("I can't"), contentWords('I cannot'));
    assert.deepEqual(contentWords('Flights from Paris to London'), [
      'flight',
      'from',
      'paris',
      'to',
      'london',
    ]);
    assert.ok(contentWords('users without orders').includes('without'));
    assert.deepEqual(contentWords('What day was May 3?'), ['day', 'may', '3'], 'the month, not the verb');
    assert.deepEqual(contentWords('May I ask'), ['ask']);
    assert.deepEqual(contentWords('three items, 3 items'), ['3', 'item', '3', 'item']);
  });

  test('contentWords brings inflections of a word together', () => {
    for (const forms of [
      'copy copies copied',
      'improve improves improving improved',
      'run runs running',
      'box boxes',
      'class classes',
      'dictionary dictionaries',
      'cause causes caused',
    ]) {
      const stems = new Set(forms.split(' ').flatMap((word) => contentWords(word)));
      assert.equal(stems.size, 1, `${forms} -> ${[...stems].join(', ')}`);
    }
  });
});
