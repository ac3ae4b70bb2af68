/**
 * What the semantic cache compares: a request's last user message (the
 * prompt), within a partition that is everything else about the request.
 *
 * Two requests can only share an answer when all but the prompt's wording is
 * identical: the same API, model, scope (tenant), system prompt, earlier
 * turns, tools, sampling parameters... The partition is the exact cache's key
 * of the request with the prompt's text taken out, so every field that
 * changes the exact key also keeps semantic neighbours apart.
 *
 * Where similar wording stops meaning the same question, the semantic cache
 * stays out by default: requests with tools (a near prompt can call for a
 * different call) and conversations longer than `max_turns` user turns
 * (README "Semantic cache"). A prompt that is not plain text (an image, a
 * document, a tool result) is never compared.
 */
import { type CacheApi, cacheKey } from '../cache-key.ts';
import { cacheKeyString } from '../cache-store.ts';

export interface SemanticSettings {
  enabled: boolean;
  threshold: number;
  embedder: string;
  /** Most user turns a conversation may have and still be compared. */
  max_turns: number;
  /** Whether requests that offer tools are compared too. */
  tools: boolean;
}

export interface SemanticPrompt {
  /** The prompt's text: what is embedded. */
  readonly text: string;
  /** Everything else about the request: model, scope and the hash of the rest (the caller adds the embedder's name). */
  readonly partition: string;
}

/** Longest prompt compared: a longer one is rarely asked twice in other words, and costs more to embed. */
const MAX_PROMPT_CHARS = 8192;

/** The request's prompt and partition, or undefined when it is not to be compared. */
export function semanticPrompt(
  api: CacheApi,
  body: object,
  model: string,
  scope: string,
  settings: SemanticSettings,
): SemanticPrompt | undefined {
  if (api === 'embeddings' || !settings.enabled) return undefined;
  const record = body as Record<string, unknown>;
  if (!settings.tools && offersTools(record)) return undefined;
  const messages = record['messages'];
  if (!Array.isArray(messages) || messages.length === 0) return undefined;
  let userTurns = 0;
  for (const message of messages) if ((message as { role?: unknown })?.role === 'user') userTurns++;
  if (userTurns > settings.max_turns) return undefined;
  const last = messages[messages.length - 1] as { role?: unknown; content?: unknown } | null;
  if (last === null || typeof last !== 'object' || last.role !== 'user') return undefined;
  const text = plainText(last.content);
  if (text === undefined || text.trim().length === 0 || text.length > MAX_PROMPT_CHARS) return undefined;
  const rest = { ...record, messages: [...messages.slice(0, -1), { ...last, content: null }] };
  // Model and scope are part of the partition: a prompt never meets another tenant's or model's.
  return { text, partition: cacheKeyString(cacheKey(api, rest, model, scope)) };
}

function offersTools(body: Record<string, unknown>): boolean {
  const tools = body['tools'] ?? body['functions'];
  return Array.isArray(tools) && tools.length > 0;
}

/** A message's content as text when it is only text (a string, or text parts). */
function plainText(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return undefined;
  const texts: string[] = [];
  for (const part of content) {
    const p = part as { type?: unknown; text?: unknown } | null;
    if (p === null || typeof p !== 'object' || p.type !== 'text' || typeof p.text !== 'string') {
      return undefined;
    }
    texts.push(p.text);
  }
  return texts.join('\n');
}
