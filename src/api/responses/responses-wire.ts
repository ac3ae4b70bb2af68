/**
 * The OpenAI Responses API on the wire (`POST /v1/responses`), the part of it
 * this gateway serves: requests, input and output items, the Response
 * object, stream events. Spelled after OpenAI's API reference and the
 * official `openai` SDK's `resources/responses` types; only what the
 * translation reads or writes is modelled.
 */
import type { JsonObject } from '../../core/types.ts';

export interface InputTextPart {
  type: 'input_text';
  text: string;
}
export interface InputImagePart {
  type: 'input_image';
  image_url?: string | null;
  file_id?: string | null;
  detail?: 'auto' | 'low' | 'high';
}
export interface OutputTextPart {
  type: 'output_text';
  text: string;
  annotations: unknown[];
  logprobs?: unknown[];
}
export interface RefusalPart {
  type: 'refusal';
  refusal: string;
}

export type MessageContentPart = InputTextPart | InputImagePart | OutputTextPart | RefusalPart;

/** A message item: what the client said (user/system/developer) or what the model said (assistant). */
export interface MessageItem {
  type: 'message';
  id?: string;
  role: 'user' | 'assistant' | 'system' | 'developer';
  content: string | MessageContentPart[];
  status?: 'in_progress' | 'completed' | 'incomplete';
}

export interface FunctionCallItem {
  type: 'function_call';
  id?: string;
  call_id: string;
  name: string;
  arguments: string;
  status?: 'in_progress' | 'completed' | 'incomplete';
}

export interface FunctionCallOutputItem {
  type: 'function_call_output';
  id?: string;
  call_id: string;
  output: string | Array<InputTextPart | InputImagePart>;
  status?: 'in_progress' | 'completed' | 'incomplete';
}

export type InputItem = MessageItem | FunctionCallItem | FunctionCallOutputItem;

/** What the model produced: one assistant message and/or function calls. */
export interface OutputMessage {
  type: 'message';
  id: string;
  role: 'assistant';
  status: 'in_progress' | 'completed' | 'incomplete';
  content: Array<OutputTextPart | RefusalPart>;
}
export type OutputItem = OutputMessage | (FunctionCallItem & { id: string });

export interface FunctionTool {
  type: 'function';
  name: string;
  description?: string | null;
  parameters?: JsonObject | null;
  strict?: boolean | null;
}

export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; name: string };

export type TextFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | {
      type: 'json_schema';
      name: string;
      schema: JsonObject;
      description?: string;
      strict?: boolean | null;
    };

export interface ResponsesRequest {
  model: string;
  input: string | InputItem[];
  instructions?: string | null;
  previous_response_id?: string | null;
  tools?: FunctionTool[];
  tool_choice?: ToolChoice;
  parallel_tool_calls?: boolean | null;
  text?: { format?: TextFormat } | null;
  max_output_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  reasoning?: { effort?: string | null; summary?: string | null } | null;
  metadata?: Record<string, string> | null;
  store?: boolean | null;
  stream?: boolean | null;
  user?: string;
  safety_identifier?: string;
  truncation?: 'auto' | 'disabled' | null;
  include?: string[] | null;
  service_tier?: string | null;
}

export interface ResponseUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export type ResponseStatus = 'completed' | 'failed' | 'in_progress' | 'incomplete';

export interface ResponseObject {
  id: string;
  object: 'response';
  created_at: number;
  status: ResponseStatus;
  background: false;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: 'max_output_tokens' | 'content_filter' } | null;
  instructions: string | null;
  max_output_tokens: number | null;
  metadata: Record<string, string>;
  model: string;
  output: OutputItem[];
  parallel_tool_calls: boolean;
  previous_response_id: string | null;
  reasoning: { effort: string | null; summary: string | null };
  store: boolean;
  temperature: number | null;
  text: { format: TextFormat };
  tool_choice: ToolChoice;
  tools: FunctionTool[];
  top_p: number | null;
  truncation: 'auto' | 'disabled';
  usage: ResponseUsage | null;
  user?: string;
}

/** A stream event: its `type`, its fields and the `sequence_number` every event carries. */
export type ResponseStreamEvent = { type: string; sequence_number: number } & JsonObject;
