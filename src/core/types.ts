/**
 * The canonical request/response shapes: OpenAI Chat Completions, as sent on the wire.
 *
 * Every provider adapter translates to and from these. They are deliberately open
 * (`[key: string]: unknown`): fields we do not model must survive the trip to
 * OpenAI-compatible upstreams untouched, because users rely on new parameters
 * before any gateway knows about them.
 *
 * This module imports nothing else of ours (dependencies point one way).
 */

export type JsonObject = { [key: string]: unknown };

export interface TextPart {
  type: 'text';
  text: string;
}
export interface ImagePart {
  type: 'image_url';
  image_url: { url: string; detail?: 'auto' | 'low' | 'high' };
}
export type ContentPart = TextPart | ImagePart | ({ type: string } & JsonObject);

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool' | 'function';
  content?: string | ContentPart[] | null;
  name?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  [key: string]: unknown;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } & JsonObject;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  n?: number | null;
  stop?: string | string[] | null;
  tools?: Array<{
    type: 'function';
    function: { name: string; description?: string; parameters?: JsonObject };
  }>;
  tool_choice?: unknown;
  user?: string;
  [key: string]: unknown;
}

/** Where a ledger row's token counts came from: the upstream, the gateway's estimate, or nowhere. */
export type UsageSource = 'upstream' | 'estimated' | 'none';

/** What an attempt is billed: token counts and where they came from. */
export interface Billed {
  usage: Usage;
  source: UsageSource;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number; [key: string]: unknown };
  completion_tokens_details?: { reasoning_tokens?: number; [key: string]: unknown };
  [key: string]: unknown;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call';

export interface ChatChoice {
  index: number;
  message: { role: 'assistant'; content: string | null; tool_calls?: ToolCall[]; [key: string]: unknown };
  finish_reason: FinishReason | null;
  logprobs?: unknown;
  [key: string]: unknown;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: ChatChoice[];
  usage?: Usage;
  [key: string]: unknown;
}

export interface ChunkChoice {
  index: number;
  delta: {
    role?: 'assistant';
    content?: string | null;
    tool_calls?: Array<{
      index: number;
      id?: string;
      type?: 'function';
      function?: { name?: string; arguments?: string };
    }>;
    [key: string]: unknown;
  };
  finish_reason: FinishReason | null;
  logprobs?: unknown;
  [key: string]: unknown;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: ChunkChoice[];
  usage?: Usage | null;
  [key: string]: unknown;
}

export interface EmbeddingRequest {
  model: string;
  input: string | string[] | number[] | number[][];
  encoding_format?: 'float' | 'base64';
  dimensions?: number;
  user?: string;
  [key: string]: unknown;
}

/**
 * Set to true on an answer whose `usage` the adapter estimated because the
 * upstream reports none (Gemini embeddings), so the ledger can say so.
 * Symbol-keyed: JSON never serializes it, so it cannot reach a client.
 */
export const USAGE_ESTIMATED: unique symbol = Symbol('switchyard.usageEstimated');

export interface EmbeddingResponse {
  object: 'list';
  data: Array<{ object: 'embedding'; index: number; embedding: number[] | string }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
  [USAGE_ESTIMATED]?: true;
  [key: string]: unknown;
}
