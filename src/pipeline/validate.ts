/**
 * Request body validation for the OpenAI routes.
 *
 * Validation is strict where the gateway or a bill depends on a field (model,
 * messages, stream, counts and limits) and open everywhere else: unknown
 * fields pass through to OpenAI-compatible upstreams untouched. Bounds stop
 * parameter bombs before any upstream call. Fields that would let a client
 * choose where our provider credentials are sent are refused outright.
 */
import { GatewayError } from '../core/errors.ts';
import type { ChatRequest, EmbeddingRequest } from '../core/types.ts';

/** Fields some gateways honour to pick the upstream URL or key per request. Never here. */
const FORBIDDEN_FIELDS = [
  'api_base',
  'base_url',
  'api_key',
  'api_version',
  'azure_endpoint',
  'custom_llm_provider',
  'endpoint',
  'url',
];

export const LIMITS = {
  modelLength: 200,
  messages: 10_000,
  n: 16,
  maxTokens: 10_000_000,
  stopSequences: 16,
  tools: 512,
  embeddingInputs: 2_048,
} as const;

/** Refuses the request, naming the field at fault (every API renders it in its own error shape). */
export function fail(param: string, message: string): never {
  throw new GatewayError('invalid_request', `${param}: ${message}`, { param });
}

/** A body that is not a JSON object; an absent one (empty request body) is said so. */
export function failBody(body: unknown): never {
  fail(
    'body',
    body === undefined ? 'the request body is empty; expected a JSON object' : 'expected a JSON object',
  );
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * What every model request must satisfy, whichever API it arrives in: no
 * field that would choose the upstream, and a sane `model`.
 */
export function checkGatewayFields(body: Record<string, unknown>): void {
  for (const field of FORBIDDEN_FIELDS) {
    if (Object.hasOwn(body, field)) {
      fail(
        field,
        'this gateway decides where requests are sent; per-request upstream settings are not accepted',
      );
    }
  }
  const model = body['model'];
  if (typeof model !== 'string' || model.length === 0) fail('model', 'expected a non-empty string');
  if (model.length > LIMITS.modelLength) fail('model', `expected at most ${LIMITS.modelLength} characters`);
}

function checkCommon(body: Record<string, unknown>): void {
  checkGatewayFields(body);
  if (body['user'] !== undefined && typeof body['user'] !== 'string') fail('user', 'expected a string');
}

/** An optional integer field within bounds. */
export function checkInteger(body: Record<string, unknown>, field: string, min: number, max: number): void {
  const value = body[field];
  if (value === undefined || value === null) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(field, `expected an integer from ${min} to ${max}`);
  }
}

/** An optional finite number field within bounds. */
export function checkNumber(body: Record<string, unknown>, field: string, min: number, max: number): void {
  const value = body[field];
  if (value === undefined || value === null) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    fail(field, `expected a number from ${min} to ${max}`);
  }
}

/** `messages`: a non-empty array within the gateway's bound, in either API. */
export function checkMessageList(body: Record<string, unknown>): unknown[] {
  const messages = body['messages'];
  if (!Array.isArray(messages) || messages.length === 0) fail('messages', 'expected a non-empty array');
  if (messages.length > LIMITS.messages) fail('messages', `expected at most ${LIMITS.messages} messages`);
  return messages;
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

export function validateChatRequest(body: unknown): ChatRequest {
  if (!isObject(body)) failBody(body);
  checkCommon(body);
  const messages = checkMessageList(body);
  for (let i = 0; i < messages.length; i++) {
    const message: unknown = messages[i];
    if (!isObject(message)) fail(`messages[${i}]`, 'expected an object');
    if (typeof message['role'] !== 'string' || !ROLES.has(message['role'])) {
      fail(`messages[${i}].role`, 'expected one of system, developer, user, assistant, tool');
    }
    const content = message['content'];
    if (content !== undefined && content !== null && typeof content !== 'string' && !Array.isArray(content)) {
      fail(`messages[${i}].content`, 'expected a string or an array of content parts');
    }
    if (Array.isArray(content)) {
      for (let j = 0; j < content.length; j++) {
        const part: unknown = content[j];
        if (!isObject(part) || typeof part['type'] !== 'string') {
          fail(`messages[${i}].content[${j}]`, 'expected a content part with a type');
        }
      }
    }
  }
  const stream = body['stream'];
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean')
    fail('stream', 'expected a boolean');
  const streamOptions = body['stream_options'];
  if (streamOptions !== undefined && streamOptions !== null && !isObject(streamOptions)) {
    fail('stream_options', 'expected an object');
  }
  checkInteger(body, 'n', 1, LIMITS.n);
  checkInteger(body, 'max_tokens', 1, LIMITS.maxTokens);
  checkInteger(body, 'max_completion_tokens', 1, LIMITS.maxTokens);
  checkInteger(body, 'top_logprobs', 0, 20);
  checkNumber(body, 'temperature', 0, 2);
  checkNumber(body, 'top_p', 0, 1);
  checkNumber(body, 'presence_penalty', -2, 2);
  checkNumber(body, 'frequency_penalty', -2, 2);
  const stop = body['stop'];
  if (stop !== undefined && stop !== null) {
    const list = typeof stop === 'string' ? [stop] : stop;
    if (
      !Array.isArray(list) ||
      list.length > LIMITS.stopSequences ||
      list.some((s) => typeof s !== 'string')
    ) {
      fail('stop', `expected a string or up to ${LIMITS.stopSequences} strings`);
    }
  }
  const tools = body['tools'];
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools) || tools.length > LIMITS.tools)
      fail('tools', `expected up to ${LIMITS.tools} tools`);
    for (let i = 0; i < tools.length; i++) {
      const tool: unknown = tools[i];
      const fn = isObject(tool) ? tool['function'] : undefined;
      if (!isObject(tool) || !isObject(fn) || typeof fn['name'] !== 'string') {
        fail(`tools[${i}].function.name`, 'expected a function tool with a name');
      }
    }
  }
  return body as ChatRequest;
}

export function validateEmbeddingRequest(body: unknown): EmbeddingRequest {
  if (!isObject(body)) failBody(body);
  checkCommon(body);
  const input = body['input'];
  const ok =
    typeof input === 'string' ||
    (Array.isArray(input) &&
      input.length > 0 &&
      input.length <= LIMITS.embeddingInputs &&
      (input.every((v) => typeof v === 'string') ||
        input.every((v) => typeof v === 'number') ||
        input.every((v) => Array.isArray(v) && v.every((n) => typeof n === 'number'))));
  if (!ok)
    fail('input', `expected a string or an array of up to ${LIMITS.embeddingInputs} strings or token arrays`);
  const format = body['encoding_format'];
  if (format !== undefined && format !== 'float' && format !== 'base64') {
    fail('encoding_format', "expected 'float' or 'base64'");
  }
  checkInteger(body, 'dimensions', 1, 65_536);
  return body as EmbeddingRequest;
}
