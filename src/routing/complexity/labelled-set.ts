/**
 * The labelled prompts the complexity classifiers are tuned and measured on
 * (data/dev.jsonl: tuned on, and the nearest-neighbour classifier's
 * examples; data/heldout.jsonl: only measured on). They live here, beside
 * the code that reads them, because the nearest-neighbour classifier needs
 * the development set at run time: `npm run build` copies them to dist/.
 *
 * One JSON object a line: `id`, `tier` (small | medium | large), `reason`
 * (one line: why that tier), `prompt` (the last user turn), and optionally
 * `history` (earlier turns), `tools` (names of the tools offered) and
 * `max_tokens`. What the tiers mean (the labelling rule):
 * - small: a lookup, a one-line transformation, a short translation, chat,
 *   one-step arithmetic, a one-line code question: any small model gets it right;
 * - medium: one focused task: a single function, an explanation, a summary,
 *   an email with a few constraints, a comparison, a two-step problem, one tool;
 * - large: multi-step work where a weaker model fails: design with failure
 *   handling, proofs, derivations, bugs in concurrent code with fixes and
 *   tests, migration plans, threat models, many constraints at once, long
 *   documents to analyse, agentic work over several tools, long outputs.
 */
import { readFileSync } from 'node:fs';
import type { ChatMessage, ChatRequest } from '../../core/types.ts';
import type { ComplexityTier } from '../model-table.ts';
import { TIERS } from './classifier.ts';

export interface LabelledPrompt {
  id: string;
  tier: ComplexityTier;
  reason: string;
  prompt: string;
  history?: ChatMessage[];
  tools?: string[];
  max_tokens?: number;
}

export type LabelledSetName = 'dev' | 'heldout';

export function labelledSetPath(name: LabelledSetName): URL {
  return new URL(`./data/${name}.jsonl`, import.meta.url);
}

/** Reads a labelled set (one of ours, or a user's own file in the same format). */
export function readLabelledSet(source: LabelledSetName | URL | string): LabelledPrompt[] {
  const path = source === 'dev' || source === 'heldout' ? labelledSetPath(source) : source;
  const lines = readFileSync(path, 'utf8').split('\n');
  const out: LabelledPrompt[] = [];
  lines.forEach((line, index) => {
    if (line.trim() === '') return;
    out.push(parseLine(line, `${String(path)}:${index + 1}`));
  });
  return out;
}

function parseLine(line: string, where: string): LabelledPrompt {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new Error(`${where}: not JSON`);
  }
  const v = value as Partial<LabelledPrompt>;
  if (typeof v.id !== 'string' || typeof v.prompt !== 'string' || typeof v.reason !== 'string') {
    throw new Error(`${where}: expected string id, prompt and reason`);
  }
  if (!TIERS.includes(v.tier as ComplexityTier))
    throw new Error(`${where}: expected tier small|medium|large`);
  if (v.tools !== undefined && !(Array.isArray(v.tools) && v.tools.every((t) => typeof t === 'string'))) {
    throw new Error(`${where}: expected tools as a list of names`);
  }
  if (v.history !== undefined && !Array.isArray(v.history))
    throw new Error(`${where}: expected history as a list`);
  if (v.max_tokens !== undefined && typeof v.max_tokens !== 'number') {
    throw new Error(`${where}: expected max_tokens as a number`);
  }
  return v as LabelledPrompt;
}

/** The chat request a labelled prompt stands for. */
export function labelledRequest(example: LabelledPrompt, model = 'auto'): ChatRequest {
  const request: ChatRequest = {
    model,
    messages: [...(example.history ?? []), { role: 'user', content: example.prompt }],
  };
  if (example.tools !== undefined) {
    request.tools = example.tools.map((name) => ({
      type: 'function',
      function: { name, parameters: { type: 'object', properties: {} } },
    }));
  }
  if (example.max_tokens !== undefined) request.max_tokens = example.max_tokens;
  return request;
}
