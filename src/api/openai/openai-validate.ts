/**
 * Request body validation for the OpenAI routes.
 *
 * Validation is strict where the gateway or a bill depends on a field (model,
 * messages, stream, counts and limits) and open everywhere else: unknown
 * fields pass through to OpenAI-compatible upstreams untouched. Bounds stop
 * parameter bombs before any upstream call. The field checks themselves are
 * shared with the Anthropic API (../field-checks.ts).
 */

import type { ChatRequest, EmbeddingRequest } from '../../core/types.ts';
import {
  checkGatewayFields,
  checkInteger,
  checkMessageList,
  checkNumber,
  fail,
  failBody,
  isObject,
  LIMITS,
} from '../field-checks.ts';

function checkCommon(body: Record<string, unknown>): void {
  checkGatewayFields(body);
  if (body['user'] !== undefined && typeof body['user'] !== 'string') fail('user', 'expected a string');
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
