/**
 * How demanding a chat request looks, on a 0–10 scale, from cheap textual
 * signals (no model call, a single pass over the text):
 *
 * | signal                                   | points                                   |
 * |------------------------------------------|------------------------------------------|
 * | length (estimated tokens, whole chat)    | <30: 0, <100: 1, <250: 2, <600: 3.5, <1500: 4.5, else 5.5 |
 * | coding task ("implement", "refactor", "debug", "write a … function/query/script") | +3.5 |
 * | code fence (```)                         | +2.5                                     |
 * | code syntax (`def f(`, `struct X {`, `=>`, `SELECT … =`, `#include`) | +1           |
 * | reasoning cues ("prove", "step by step", "analyze", "compare", "design", "trade-off", "derive", "evaluate", "explain why", "optimize") | first +3.5, each further distinct cue +1.5, at most +6.5 |
 * | conversation depth (non-system turns)    | >2: +1, >6: +2, >12: +3                  |
 * | tools offered                            | 1–3: +3.5, more: +4.5                    |
 * | requested max tokens                     | ≥1000: +1, ≥4000: +2, ≥16000: +3          |
 * | structured output (json_schema)          | +1                                       |
 *
 * One strong signal (a coding task, a reasoning cue, tools, a long context)
 * lifts a request out of `small` with the default thresholds (3 / 6); a
 * strong signal plus a second one makes it `large`. The sum is capped at 10.
 * Only the last user turn is searched for cues and code (what is being asked
 * now); length and depth count the whole conversation (what the model must
 * read). It is a heuristic for picking a model size: wrong
 * answers cost money or quality, never correctness, and thresholds are
 * tunable per model (`complexity: { small_max, medium_max }`).
 */
import { MESSAGE_OVERHEAD_CHARS, tokensForChars } from '../core/token-estimate.ts';
import type { ChatMessage, ChatRequest, EmbeddingRequest } from '../core/types.ts';
import type { ComplexityTier } from './model-table.ts';
import { isChatRequest } from './request-features.ts';

const CODE_SYNTAX =
  /\b(?:def|class|function|import|return|const|let|var|async|await|SELECT|INSERT|UPDATE|struct|impl|fn|public static)\b[^\n]*[(){};:=]|=>|#include|<\/?[a-z]+>/;
const CODING_TASK =
  /\b(?:implement|refactor|debug|fix (?:this|the) bug|write (?:a|an|the) (?:\w+ ){0,3}(?:function|class|script|program|query|regex|unit tests?|module|api|server|parser))\b/i;

const CUES: readonly RegExp[] = [
  /\bprov(?:e|ing)\b|\bproof\b/i,
  /\bstep[- ]by[- ]step\b/i,
  /\banaly[sz](?:e|is|ing)\b/i,
  /\bcompar(?:e|ing|ison)\b|\bcontrast\b/i,
  /\bdesign\b|\barchitect(?:ure)?\b/i,
  /\btrade-?offs?\b|\bpros and cons\b/i,
  /\bderiv(?:e|ation)\b/i,
  /\bevaluat(?:e|ion)\b|\bcritiqu(?:e|ing)\b|\bjustify\b/i,
  /\bexplain why\b|\breason(?:ing)? about\b/i,
  /\boptimi[sz](?:e|ation)\b|\bcomplexity\b/i,
];

export interface ComplexityThresholds {
  smallMax: number;
  mediumMax: number;
}

export function complexityScore(request: ChatRequest | EmbeddingRequest): number {
  if (!isChatRequest(request)) return 0;
  let chars = 0;
  let turns = 0;
  let lastUser = '';
  for (const message of request.messages) {
    const text = textOf(message);
    chars += text.length + MESSAGE_OVERHEAD_CHARS;
    if (message.role !== 'system' && message.role !== 'developer') turns++;
    if (message.role === 'user') lastUser = text;
  }
  let score = lengthPoints(tokensForChars(chars));

  if (CODING_TASK.test(lastUser)) score += 3.5;
  if (lastUser.includes('```')) score += 2.5;
  if (CODE_SYNTAX.test(lastUser)) score += 1;

  let cues = 0;
  for (const cue of CUES) if (cue.test(lastUser)) cues++;
  if (cues > 0) score += Math.min(6.5, 3.5 + (cues - 1) * 1.5);

  if (turns > 12) score += 3;
  else if (turns > 6) score += 2;
  else if (turns > 2) score += 1;

  const tools = Array.isArray(request.tools) ? request.tools.length : 0;
  if (tools > 3) score += 4.5;
  else if (tools > 0) score += 3.5;

  const max = request.max_completion_tokens ?? request.max_tokens ?? 0;
  if (max >= 16_000) score += 3;
  else if (max >= 4_000) score += 2;
  else if (max >= 1_000) score += 1;

  if ((request['response_format'] as { type?: unknown } | undefined)?.type === 'json_schema') score += 1;

  return Math.min(10, Math.round(score * 10) / 10);
}

export function tierOf(score: number, thresholds: ComplexityThresholds): ComplexityTier {
  if (score <= thresholds.smallMax) return 'small';
  if (score <= thresholds.mediumMax) return 'medium';
  return 'large';
}

function lengthPoints(tokens: number): number {
  if (tokens < 30) return 0;
  if (tokens < 100) return 1;
  if (tokens < 250) return 2;
  if (tokens < 600) return 3.5;
  if (tokens < 1500) return 4.5;
  return 5.5;
}

function textOf(message: ChatMessage): string {
  const content = message.content;
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) if (part.type === 'text') text += `${String(part['text'] ?? '')}\n`;
  return text;
}
