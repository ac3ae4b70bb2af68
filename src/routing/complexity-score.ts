/**
 * How demanding a chat request looks, on a 0–10 scale, from textual signals
 * (no model call; a handful of regular expressions over the last user turn):
 *
 * | signal                                             | points                                  |
 * |----------------------------------------------------|-----------------------------------------|
 * | length of the ask (words; CJK: 2 characters a word) | <8: 0, <16: 0.5, <30: 1.5, <50: 2, <90: 2.5, else 3 |
 * | hard work (HARD_KINDS): strong kinds (proof, derivation, design, concurrency, security, migration, generalising to an algorithm, diagnosis) 4 each, weak kinds (failure handling, algorithms and complexity, optimisation, analysis, long-form, tests, stacked constraints) 2 each | sum, at most 7 |
 * | a task: hard work or an ordinary one (write, explain, summarise, compare, translate, plan, …) | +2.5 (+2 for an ask under 16 words with no hard work) |
 * | …else a question wanting an explanation or judgement (why, how does, differences, pros and cons) | +2.5 |
 * | a second question in the same ask                   | +1                                      |
 * | something substantial to produce (a function, a letter, a 300-word text, step by step, show the reasoning) | +1 |
 * | a word problem (numbers and a quantity asked for, 14+ words); else a situation and a question (2+ sentences, 14+ words) | +1; else +0.5 |
 * | an easy answer (one line, a synonym, a title) / a bounded one (summarise, in three bullet points) | −1.5 / −1.5 |
 * | requirements: clauses of 3+ words in the densest sentence | ≥4: +1, ≥7: +2                     |
 * | deliverables asked for (directive verbs)            | ≥3: +1, ≥5: +2, ≥7: +3                  |
 * | code: a fenced block / syntax; with a bug to find or code to review | 1.5 / 1; 2.5 / 2         |
 * | tools offered                                       | 1: +1, 2–3: +1.5, more: +3.5             |
 * | conversation: earlier non-system turns              | >2: +0.5, >6: +1.5, >12: +2.5           |
 * | whole conversation (estimated tokens)               | ≥600: +1, ≥1500: +2                     |
 * | requested max tokens                                | ≥1000: +1, ≥4000: +2, ≥16000: +3        |
 * | structured output (json_schema)                     | +1                                      |
 * | a greeting, thanks or "ok", and nothing else        | the score is 0                          |
 *
 * The sum is kept within 0–10 and compared with the model's thresholds
 * (`complexity: { small_max, medium_max }`, default 3 / 6): a short
 * ordinary task is small, a longer or substantial one medium; one strong
 * kind of hard work with the task it implies is large already. The cues are in English and, for the strongest kinds
 * (prove, derive, design, plan, analyse, explain, write, translate), in
 * French, German, Spanish, Portuguese, Italian, Russian, Japanese, Chinese
 * and Korean.
 *
 * Tuned on src/routing/complexity/data/dev.jsonl and measured on
 * heldout.jsonl (`node bench/complexity.ts`, README "Complexity routing").
 * Only the last user turn is searched for cues (what is being asked now),
 * and only its first 6,000 and last 2,000 characters, so a pasted document
 * costs no more than a short ask; length and depth count the whole
 * conversation (what the model must read). A wrong answer costs money or
 * quality, never correctness, and an uncertain one is rounded up by the
 * strategy's safety valve (complexity/safety-valve.ts).
 */
import { MESSAGE_OVERHEAD_CHARS, tokensForChars } from '../core/token-estimate.ts';
import type { ChatMessage, ChatRequest, EmbeddingRequest } from '../core/types.ts';
import type { ComplexityThresholds } from './complexity/classifier.ts';
import type { ComplexityTier } from './model-table.ts';
import { isChatRequest } from './request-features.ts';

export type { ComplexityThresholds };

/**
 * Each kind of hard work, matched at most once however often it is asked;
 * strong ones score 4 (a weaker model fails them), weak ones 2 (hard in
 * combination); the sum counts up to 7.
 */
const HARD_KINDS: ReadonlyArray<readonly [RegExp, number]> = [
  // proof
  [
    /\bprov(?:e|ing)\b|\bproof\b|\bshow that\b|\bdémontr|\bdemuestr|\bdemonstr[ae]|\bdimostr|\bbeweis|доказ|証明|证明|증명/i,
    4,
  ],
  // derivation, closed forms
  [/\bderiv(?:e|ing|ation)\b|\bclosed form\b|\bdériv|\bherleit|вывед|導出|推导|유도/i, 4],
  // design and architecture (not a "designer", not a logo)
  [
    /\bdesign(?!er)(?! a logo)\b|\barchitect|\bentw[iu]rf|\bprojet[ea]\b|\bprojete\b|\bdiseñ|\bconçoi|\bprogett|спроектир|设计|設計|설계/i,
    4,
  ],
  // failure handling and distributed consistency
  [
    /\bfail(?:over|back|ure|ures|s)\b|\boutages?\b|\bgoes down\b|\bis down\b|\bsplit-brain\b|\bpartitions?\b|\bdisaster\b|\brollback\b|\broll back\b|\bback out\b|\bidempot|\bexactly-once\b|\bconsisten(?:cy|t)\b|\bdouble-(?:sold|spend|charge)|\bAusfall|\bcaiu\b|\bcair\b|宕机|降级/i,
    2,
  ],
  // concurrency
  [
    /\brace\b|\bconcurren|\bthread-safe\b|\block-free\b|\bdeadlock|\batomics?\b|\bmutex|\bmulti-threaded\b|\bsame (?:moment|time)\b|\bwait and notify|\bnotifyall\b|超卖/i,
    4,
  ],
  // security
  [
    /\bthreat|\bsecur(?:e|ity|ely)\b|\bvulnerab|\binjection\b|\battack|\baudit\b|\bSTRIDE\b|\bCSRF\b|\bGDPR\b|\bcomplian/i,
    4,
  ],
  // migration and rollout
  [
    /\bmigrat|\bzero-downtime\b|\bno downtime\b|\brollout\b|\broll out\b|\bcutover\b|\brunbooks?\b|\bdeprecation\b/i,
    4,
  ],
  // algorithms and generalisation
  [
    /\bgenerali[sz]e|\bfor any\b|\bany (?:list|set|number) of\b|\bgeneral (?:function|solution|formula|case|algorithm)\b/i,
    4,
  ],
  // algorithms, complexity
  [/\balgorithm|\btime complexity\b|\brunning time\b|\bO\([^)]*\)|算法|アルゴリズム/i, 2],
  // diagnosis of a real system
  [
    /\broot cause|\binvestigat|\bdiagnos|\bfigure out\b|\bwork out\b|\bpostmortem|\bhypothes[ei]s|\bwhat is happening\b|\bsystematic/i,
    4,
  ],
  // optimisation and modelling
  [
    /\bformulat|\boptimi[sz](?:e|ation)\b|\binteger program|\bestimate (?:the|how)\b|\bequilibrium|\bmodel (?:for|of)\b|\bsensitivity\b/i,
    2,
  ],
  // analysis and judgement
  [
    /\banaly[sz](?:e|es|ed|ing|is)\b|\banalyse\b|\bevaluat|\bassess|\bcritique|\btrade-?offs?\b|\bjustify|\bweigh\b|\bimplications\b|\bconsequences\b|\bpros and cons\b.*\brecommend|\bbegründe|\bbegrunde|анализ|分析|분석|評価/i,
    2,
  ],
  // long-form deliverables
  [
    /\b\d+,?\d{3}[- ]word|\bwhite paper\b|\bdesign doc|\bfull (?:\w+ ){0,2}(?:strategy|plan|design|postmortem|document|doc|analysis)\b|\bdetailed\b|\bcomprehensive\b|\bin depth\b|\bfrom scratch\b|\bend to end\b|\bthorough\b|\bfull approach\b|\bday-by-day\b|\bclause by clause\b|\bdetallad|\bdétaill|事業計画|收支|收支計画/i,
    2,
  ],
  // tests of code to be written
  [
    /\b(?:with|and|add|include)\b(?: \w+){0,3} tests?\b|\btest suite\b|\bunit tests\b|\bstress test\b|\btest that\b/i,
    2,
  ],
  // many hard constraints at once
  [
    /\b(?:no more than|at least|at most|must not|can't|cannot|under \d+ ?ms|within \d+|budget of)\b[^.]*\b(?:no more than|at least|at most|must not|can't|cannot|only|never|without|budget)\b/i,
    2,
  ],
];

/** An ordinary task: more than a lookup, one focused thing to produce. */
const TASK =
  /\b(?:write|create|make|build|generate|draft|compose|rewrite|improve|translate|convert|summari[sz]e|explain|describe|compare|plan|outline|implement|refactor|debug|fix|solve|calculate|compute|schedule|find|pull|read|give me \d+)\b|\btradu[cz]|\bübersetz|\bfasse\b|\brésum|\brédige|\bexpli(?:que|ca|car)|\berklär|\bschreib|\bshow (?:me|the|your|how)\b|\bturn (?:this|these|it)\b|\bescrib|\bmonte\b|\belabora|\bscriv|説明|解释|请写|写一|설명|作成|объясн|напиш/i;

/** A question that wants an explanation or a judgement, not a fact. */
const QUESTION =
  /\b(?:why|how (?:does|did|should|would)|how \w+ works?\b|what (?:should|could|else)|which (?:is|one|should) (?:usually |generally )?better|which (?:\w+ )?should (?:i|we)|differences?|main causes|pros and cons|options|trend|consider)\b|\?[^?]*\?/i;

/** The client asks for little: one line, a word, a name. */
const EASY =
  /\bin (?:one|a single|\w+) (?:line|sentence|words?)\b|\bone-(?:line|sentence|word)\b|\b(?:two|three|\d)-line\b|\bsynonyms?\b|\bsubject line\b|\ba (?:title|name) for\b|\bbriefly\b/i;

/** Something substantial to produce: code, a document, a worked explanation. */
const PRODUCE =
  /\b(?:compare|explain|describe|outline|plan|implement|debug)\b|\b(?:write|create|build|make|generate|draft|give me)\b(?: (?:a|an|the|me|\d+|some))?(?: [\w.+#-]+){0,4} (?:function|class|script|program|component|query|workflow|dockerfile|deployment|manifest|recipe|plan|letter|email|essay|paragraph|description|story|toast|speech|posts?|ideas|questions|listing|summary|report|tests?|module|parser)\b|\b\d+[- ]word\b|\bstep[- ]by[- ]step\b|\d+\s*字|\bshow (?:the|your|me) (?:reasoning|formula|steps|work|how)\b|\bexamples?\b/i;

/** Numbers and a quantity asked for: a word problem to work through. */
const WORD_PROBLEM =
  /\d[^?]*\b(?:how (?:much|many|long|far)|what (?:time|is (?:its|the (?:total|probability|area|price))))\b|\bprobability\b[^?]*\d/i;

/** The answer's size is fixed and small: a summary in a few points or sentences. */
const BOUNDED = /\bsummari[sz]e\b|\bin (?:\w+ )?(?:bullet points|sentences)\b|\bfasse\b|\brésum|\btl;?dr\b/i;

/** A second question in the same ask ("…, and when would I use each?"). */
const FOLLOW_UP_QUESTION = /\b(?:and|then) (?:when|why|how|what|which|where)\b/i;

const MAX_HARD_POINTS = 7;

/** Verbs that each ask for one more deliverable. */
const DELIVERABLE =
  /\b(?:explain|describe|write|give|list|include|cover|show|compare|estimate|propose|design|prove|derive|fix|find|identify|analy[sz]e|recommend|justify|rank|discuss|handle|implement|build|create|sketch|outline|suggest|rewrite|redraft|compute|calculate|solve|evaluate|decide|interpret|generali[sz]e|formulate|reconstruct|review|audit|investigate|verify|plan|summari[sz]e|update|draft|post|open|check|go through|choose|set up|lay out|reason)\b/gi;

const CODE =
  /```|\n {2,}\S|\b(?:def|fn|func|function|class|struct|SELECT|INSERT|UPDATE|return|const|let|var)\b[^\n]*[(){};=]|=>|#include/;
const CODE_TROUBLE =
  /\b(?:bug|wrong|why|fix|debug|review|audit|refactor|rewrite|loses|leak|slow|sometimes|insecure|problem)/i;

/** Nothing but a greeting or thanks: there is no task. */
const SMALL_TALK =
  /^\s*(?:hi|hey|hello|good (?:morning|evening|night)|thanks?|thank you|ok(?:ay)?|cool|great|bye)\b[\s\w,!.'’]{0,30}$/i;

/** What is scanned for cues: a pasted document's middle says little about the ask. */
const HEAD_CHARS = 6000;
const TAIL_CHARS = 2000;

export function complexityScore(request: ChatRequest | EmbeddingRequest): number {
  const signals = complexitySignals(request);
  let score = 0;
  for (const points of Object.values(signals)) score += points;
  return Math.max(0, Math.min(10, Math.round(score * 10) / 10));
}

/** The points each signal gave (the score is their sum, within 0–10): what a tuner looks at. */
export function complexitySignals(request: ChatRequest | EmbeddingRequest): Record<string, number> {
  const signals: Record<string, number> = {};
  if (!isChatRequest(request)) return signals;
  let chars = 0;
  let turns = 0;
  let lastUser = '';
  for (const message of request.messages) {
    const text = textOf(message);
    chars += text.length + MESSAGE_OVERHEAD_CHARS;
    if (message.role !== 'system' && message.role !== 'developer') turns++;
    if (message.role === 'user') lastUser = text;
  }
  const ask =
    lastUser.length > HEAD_CHARS + TAIL_CHARS
      ? `${lastUser.slice(0, HEAD_CHARS)}\n${lastUser.slice(-TAIL_CHARS)}`
      : lastUser;
  const tools = Array.isArray(request.tools) ? request.tools.length : 0;
  const max = request.max_completion_tokens ?? request.max_tokens ?? 0;
  const earlierTurns = turns - 1;

  if (tools === 0 && earlierTurns <= 2 && max < 1000 && SMALL_TALK.test(ask)) return signals;

  signals['length'] = lengthPoints(wordsOf(lastUser));

  let hard = 0;
  for (let i = 0; i < HARD_KINDS.length; i++) {
    const [kind, points] = HARD_KINDS[i]!;
    if (kind.test(ask)) hard += points;
  }
  if (hard > 0) signals['hard'] = Math.min(MAX_HARD_POINTS, hard);

  const words = wordsOf(lastUser);
  // A short ask is a short job (translate a line, fix a sentence) unless it names hard work.
  if (hard > 0 || TASK.test(ask)) signals['task'] = hard === 0 && words < 16 ? 2 : 2.5;
  else if (QUESTION.test(ask)) signals['task'] = 2.5;
  if (words >= 14 && WORD_PROBLEM.test(ask)) signals['word problem'] = 1;
  else if (words >= 14 && sentences(ask) >= 2) signals['situation'] = 0.5;
  if (BOUNDED.test(ask)) signals['bounded'] = -1.5;
  if (FOLLOW_UP_QUESTION.test(ask)) signals['second question'] = 1;
  if (PRODUCE.test(ask)) signals['produce'] = 1;
  if (EASY.test(ask)) signals['easy'] = -1.5;

  const separators = densestSentence(ask);
  if (separators >= 4) signals['requirements'] = separators >= 7 ? 2 : 1;

  const deliverables = countMatches(ask, DELIVERABLE);
  if (deliverables >= 3) signals['deliverables'] = deliverables >= 7 ? 3 : deliverables >= 5 ? 2 : 1;

  if (ask.includes('```')) signals['code'] = CODE_TROUBLE.test(ask) ? 2.5 : 1.5;
  else if (CODE.test(ask)) signals['code'] = CODE_TROUBLE.test(ask) ? 2 : 1;

  if (tools > 0) signals['tools'] = tools > 3 ? 3.5 : tools > 1 ? 1.5 : 1;

  if (earlierTurns > 2) signals['conversation'] = earlierTurns > 12 ? 2.5 : earlierTurns > 6 ? 1.5 : 0.5;

  const tokens = tokensForChars(chars);
  if (tokens >= 600) signals['context'] = tokens >= 1500 ? 2 : 1;

  if (max >= 1_000) signals['max tokens'] = max >= 16_000 ? 3 : max >= 4_000 ? 2 : 1;

  if ((request['response_format'] as { type?: unknown } | undefined)?.type === 'json_schema') {
    signals['json schema'] = 1;
  }
  return signals;
}

export function tierOf(score: number, thresholds: ComplexityThresholds): ComplexityTier {
  if (score <= thresholds.smallMax) return 'small';
  if (score <= thresholds.mediumMax) return 'medium';
  return 'large';
}

function lengthPoints(words: number): number {
  if (words < 8) return 0;
  if (words < 16) return 0.5;
  if (words < 30) return 1.5;
  if (words < 50) return 2;
  if (words < 90) return 2.5;
  return 3;
}

/** Words, with Chinese and Japanese (written without spaces) counted at two characters a word. */
function wordsOf(text: string): number {
  let words = 0;
  let cjk = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if ((code >= 0x3040 && code <= 0x30ff) || (code >= 0x4e00 && code <= 0x9fff)) {
      cjk++;
      inWord = false;
    } else if (code <= 0x20 || code === 0x3000) {
      inWord = false;
    } else if (!inWord) {
      words++;
      inWord = true;
    }
  }
  return words + Math.ceil(cjk / 2);
}

/**
 * Commas, semicolons and colons in the sentence that has most, each closing
 * a clause of three words or more (CJK: six characters): a list of
 * requirements is one sentence of clauses; a pasted passage is many
 * ordinary sentences, a list of numbers or single words is no requirement.
 */
function densestSentence(text: string): number {
  let most = 0;
  let current = 0;
  let clauseWeight = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === ' ') clauseWeight += 1;
    else if (c.charCodeAt(0) >= 0x3040) clauseWeight += 1 / 3;
    if (c === ',' || c === ';' || c === ':' || c === '、' || c === '，' || c === '；' || c === '：') {
      if (clauseWeight >= 2) current++;
      clauseWeight = 0;
    } else if (c === '.' || c === '?' || c === '!' || c === '\n' || c === '。' || c === '？') {
      // A decimal point or a thousands separator does not end a sentence.
      if (c === '.' && /\d/.test(text[i + 1] ?? '')) continue;
      if (current > most) most = current;
      current = 0;
      clauseWeight = 0;
    }
  }
  return Math.max(most, current);
}

/** Sentences (at least one). */
function sentences(text: string): number {
  let n = 1;
  for (const match of text.matchAll(/[.?!。？](?:\s|$)/g)) if (match.index < text.length - 2) n++;
  return n;
}

function countMatches(text: string, pattern: RegExp): number {
  pattern.lastIndex = 0;
  let n = 0;
  while (pattern.exec(text) !== null) n++;
  return n;
}

function textOf(message: ChatMessage): string {
  const content = message.content;
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) if (part.type === 'text') text += `${String(part['text'] ?? '')}\n`;
  return text;
}
