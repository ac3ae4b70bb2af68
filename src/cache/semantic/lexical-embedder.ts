/**
 * The built-in offline embedder: no model, no server, no download. No npm
 * package ships usable sentence-embedding weights, so this one is lexical:
 * it sees which words a prompt uses, not what they mean.
 *
 * A prompt becomes its content words (lower-cased, NFKC, contractions opened,
 * English function words dropped, number words read as digits, inflections
 * trimmed by a light stemmer) and the pairs of adjacent content words, each
 * hashed into one of LEXICAL_DIMENSIONS signed buckets (feature hashing), then
 * scaled to unit length. Numbers and negations weigh double, and a word that
 * negates or directs the next one ("not safe", "from Paris", "to London")
 * forms a pair that weighs as much as a word.
 *
 * What that buys and costs (measured on the labelled pairs in
 * test/unit/semantic-pairs.test.ts, README "Semantic cache"):
 * - it matches prompts that differ in case, punctuation, function words,
 *   contractions, inflection: "How do I reset my password?" and "how can i
 *   reset my passwords";
 * - it keeps apart prompts that differ in a content word, a number, a
 *   negation or the order of words ("flights from Paris to London" and "from
 *   London to Paris" share every word, not every pair): words that change the
 *   answer (not, no, without, to, from, before, after, ...) are never dropped;
 * - it does not match paraphrases that change the words ("What is the capital
 *   of France?" and "Which city is France's capital?"), nor filler it does not
 *   know ("I was wondering, ..."): use an embeddings model for those;
 * - the longer the prompt, the less one changed word moves it: two 20-word
 *   prompts that differ in one adjective come close to the default threshold.
 */
import { type Embedder, normalize } from './embedder.ts';

/** Buckets: 512 floats (2 KB) a vector; two unrelated words share a bucket 1 time in 512. */
export const LEXICAL_DIMENSIONS = 512;

/** A pair of adjacent words counts less than a word: order matters, but less than content. */
const PAIR_WEIGHT = 0.5;
/** Numbers change answers ("15% of 200" vs "15% of 300"): they weigh more than other words. */
const NUMBER_WEIGHT = 2;
/**
 * A word that turns the meaning of the next one (see RELATION_WORDS) forms a
 * pair with it that weighs as much as a word: "from Paris" and "to Paris",
 * "not safe" and "safe" are different facts wherever they stand in a prompt.
 */
const RELATION_PAIR_WEIGHT = 1;

/** Words that negate, or give a direction or comparison to, the word after them. */
const RELATION_WORDS = new Set(
  'not no never without from to than before after above below over under versus vs except'.split(' '),
);

/** Negations flip an answer ("safe for dogs" vs "not safe for dogs"): they weigh as much as numbers. */
const NEGATIONS = new Set(['not', 'no', 'never', 'without']);

/**
 * Number words, read as the number they name ("three bullet points" = "3
 * bullet points"). Not "one": it is as often a pronoun ("which one is faster").
 */
const NUMBER_WORDS = new Map(
  Object.entries({
    zero: '0',
    two: '2',
    three: '3',
    four: '4',
    five: '5',
    six: '6',
    seven: '7',
    eight: '8',
    nine: '9',
    ten: '10',
    eleven: '11',
    twelve: '12',
  }),
);

/**
 * Function words that carry no content, so dropping them makes paraphrases
 * meet. Deliberately absent: negations and the prepositions and conjunctions
 * that change an answer (not, no, without, to, from, before, after, above,
 * below, over, under, more, less, or, and, than, vs).
 */
const STOP_WORDS = new Set(
  (
    'a an the this that these those it its i me my mine we us our you your he him his she her they them their ' +
    'is am are was were be been being do does did doing have has had having will would shall should can could ' +
    'may might must of in on at by for with about as into through during please tell show give explain ' +
    'what which who whom whose how why when where there here some any just also very really so then ' +
    'let s t d ll re ve m o hey hi hello thanks thank kindly'
  ).split(' '),
);

export class LexicalEmbedder implements Embedder {
  /** Versioned: vectors are shared between instances and kept in Redis, so any change to them bumps it. */
  readonly name = `lexical-v1-${LEXICAL_DIMENSIONS}`;

  embed(text: string): Promise<Float32Array> {
    return Promise.resolve(this.embedNow(text));
  }

  /** The same vector, synchronously (it is pure computation). */
  embedNow(text: string): Float32Array {
    const vector = new Float32Array(LEXICAL_DIMENSIONS);
    const words = contentWords(text);
    for (let i = 0; i < words.length; i++) {
      const word = words[i]!;
      addFeature(vector, word, isNumber(word) || NEGATIONS.has(word) ? NUMBER_WEIGHT : 1);
      if (i > 0) {
        const previous = words[i - 1]!;
        addFeature(
          vector,
          `${previous} ${word}`,
          RELATION_WORDS.has(previous) ? RELATION_PAIR_WEIGHT : PAIR_WEIGHT,
        );
      }
    }
    return normalize(vector);
  }
}

/** The words of `text` that carry content, in order, normalised. */
export function contentWords(text: string): string[] {
  const plain = text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\u2018\u2019\u02bc]/g, "'")
    // Negations survive contraction: "don't" -> "do not", "can't" -> "can not".
    .replace(/\b(can)'t\b/g, '$1 not')
    .replace(/\bcannot\b/g, 'can not')
    .replace(/\bwon't\b/g, 'will not')
    .replace(/n't\b/g, ' not');
  const tokens = Array.from(plain.matchAll(/\p{N}+(?:[.,]\p{N}+)*|[\p{L}\p{M}]+/gu), (match) => match[0]);
  const words: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const word = tokens[i]!;
    if (isNumber(word)) {
      words.push(word.replace(/,/g, ''));
    } else if (NUMBER_WORDS.has(word)) {
      words.push(NUMBER_WORDS.get(word)!);
    } else if (!STOP_WORDS.has(word) || (word === 'may' && nextToNumber(tokens, i))) {
      // "may" is a modal verb, except next to a number where it is the month ("May 3").
      words.push(stem(word));
    }
  }
  return words;
}

function isNumber(word: string): boolean {
  const c = word.charCodeAt(0);
  return c >= 48 && c <= 57;
}

function nextToNumber(tokens: readonly string[], i: number): boolean {
  return isNumber(tokens[i - 1] ?? '') || isNumber(tokens[i + 1] ?? '');
}

/**
 * A light suffix trim in the manner of Porter's first steps (not a full
 * stemmer), so that inflections of one word meet: plurals (-s, -es, -ies), -ing
 * and -ed (a doubled final consonant undone: "running" -> "run"), a final
 * silent e ("improve", "improving", "improved" -> "improv") and a final y
 * after a consonant ("copy", "copies", "copied" -> "copi"). Short words are
 * left alone ("need", "note", "used").
 */
function stem(word: string): string {
  let w = word;
  if (w.length > 4 && (w.endsWith('ies') || w.endsWith('ied'))) w = `${w.slice(0, -3)}i`;
  else if (/(?:ss|x|ch|sh|z)es$/.test(w)) w = w.slice(0, -2);
  else if (w.length > 3 && w.endsWith('s') && !/(?:ss|us|is)$/.test(w)) w = w.slice(0, -1);
  if (w.length > 5 && w.endsWith('ing')) w = undouble(w.slice(0, -3));
  else if (w.length > 4 && w.endsWith('ed')) w = undouble(w.slice(0, -2));
  if (w.length > 4 && w.endsWith('e')) w = w.slice(0, -1);
  if (w.length > 3 && /[^aeiou]y$/.test(w)) w = `${w.slice(0, -1)}i`;
  return w;
}

/** Undoes a doubled final consonant: "runn" -> "run", "stopp" -> "stop"; but "call", "miss", "buzz" keep theirs. */
function undouble(base: string): string {
  return /([^aeiouylsz])\1$/.test(base) ? base.slice(0, -1) : base;
}

/** Adds `weight` to the feature's bucket, with a sign from the hash so collisions cancel on average. */
function addFeature(vector: Float32Array, feature: string, weight: number): void {
  const h = fnv1a(feature);
  vector[h % LEXICAL_DIMENSIONS]! += h & 0x80000000 ? -weight : weight;
}

/** 32-bit FNV-1a over UTF-16 code units: fast, stable across processes (every instance agrees). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
