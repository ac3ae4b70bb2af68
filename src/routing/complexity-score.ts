/**
 * How demanding a chat request looks, on a 0–10 scale, from cheap textual
 * signals (no model call, a single pass over the text):
 *
 * | signal                       | points                                            |
 * |------------------------------|---------------------------------------------------|
 * | length (estimated tokens)    | <30: 0, <100: 0.5, <300: 1, <800: 1.5, <2000: 2.5, else 3 |
 * | code fence (```)             | +2                                                |
 * | code syntax (def, class, =>, `import`, `SELECT`, ...) | +1                       |
 * | coding task ("implement", "refactor", "debug", "write a function") | +1.5        |
 * | reasoning cues ("prove", "step by step", "analyze", "compare", "design", "trade-off", "derive", ...) | +1.5 each distinct cue, at most +4.5 |
 * | conversation depth (non-system turns) | >2: +0.5, >6: +1, >12: +1.5              |
 * | tools offered                | 1–3: +1, more: +1.5                               |
 * | requested max tokens         | ≥1000: +0.5, ≥4000: +1, ≥16000: +1.5              |
 * | structured output (json_schema) | +0.5                                           |
 *
 * The sum is capped at 10. Only the last user turn is searched for cues and
 * code (what is being asked now); length counts the whole conversation (what
 * the model must read). It is a heuristic for picking a model size: wrong
 * answers cost money or quality, never correctness, and thresholds are
 * tunable per model (`complexity: { small_max, medium_max }`).
 */
import type { ChatMessage, ChatRequest, EmbeddingRequest } from '../core/types.ts';
import type { ComplexityTier } from '../pipeline/models.ts';
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
    chars += text.length + 12;
    if (message.role !== 'system' && message.role !== 'developer') turns++;
    if (message.role === 'user') lastUser = text;
  }
  let score = lengthPoints(Math.ceil(chars / 4));

  if (lastUser.includes('```')) score += 2;
  if (CODE_SYNTAX.test(lastUser)) score += 1;
  if (CODING_TASK.test(lastUser)) score += 1.5;

  let cues = 0;
  for (const cue of CUES) if (cue.test(lastUser)) cues++;
  score += Math.min(4.5, cues * 1.5);

  if (turns > 12) score += 1.5;
  else if (turns > 6) score += 1;
  else if (turns > 2) score += 0.5;

  const tools = Array.isArray(request.tools) ? request.tools.length : 0;
  if (tools > 3) score += 1.5;
  else if (tools > 0) score += 1;

  const max = request.max_completion_tokens ?? request.max_tokens ?? 0;
  if (max >= 16_000) score += 1.5;
  else if (max >= 4_000) score += 1;
  else if (max >= 1_000) score += 0.5;

  if ((request['response_format'] as { type?: unknown } | undefined)?.type === 'json_schema') score += 0.5;

  return Math.min(10, Math.round(score * 10) / 10);
}

export function tierOf(score: number, thresholds: ComplexityThresholds): ComplexityTier {
  if (score <= thresholds.smallMax) return 'small';
  if (score <= thresholds.mediumMax) return 'medium';
  return 'large';
}

function lengthPoints(tokens: number): number {
  if (tokens < 30) return 0;
  if (tokens < 100) return 0.5;
  if (tokens < 300) return 1;
  if (tokens < 800) return 1.5;
  if (tokens < 2000) return 2.5;
  return 3;
}

function textOf(message: ChatMessage): string {
  const content = message.content;
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) if (part.type === 'text') text += `${String(part['text'] ?? '')}\n`;
  return text;
}
