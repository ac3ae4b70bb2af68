/**
 * Shape checks for inbound Responses API bodies (`POST /v1/responses`),
 * before any translation, lookup or upstream call. Every refusal names the
 * field at fault (`input[2].content[0].image_url`), in OpenAI's error shape.
 *
 * Unlike Chat Completions, nothing here reaches an upstream as sent (the body
 * is translated), so a field the translation does not carry is refused rather
 * than silently dropped: hosted tools (web search, file search…), background
 * mode, server-side conversations and stored prompts are OpenAI's own
 * services, which no other provider offers.
 */
import {
  checkGatewayFields,
  checkInteger,
  checkNumber,
  fail,
  failBody,
  isObject,
  LIMITS,
} from '../field-checks.ts';
import type { ResponsesRequest } from './responses-wire.ts';

type Obj = Record<string, unknown>;

/** Fields the translation reads; anything else is refused by name. */
const KNOWN = new Set([
  'model',
  'input',
  'instructions',
  'previous_response_id',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'text',
  'max_output_tokens',
  'temperature',
  'top_p',
  'reasoning',
  'metadata',
  'store',
  'stream',
  'user',
  'safety_identifier',
  'truncation',
  'include',
  'service_tier',
]);

/** OpenAI-hosted features, named so the refusal says why. */
const HOSTED = new Set(['background', 'conversation', 'prompt', 'prompt_cache_key', 'max_tool_calls']);

const EFFORTS = new Set(['none', 'minimal', 'low', 'medium', 'high']);
const MESSAGE_ROLES = new Set(['user', 'assistant', 'system', 'developer']);
/** A `resp_` id as this gateway writes them (responses-ids.ts). */
export const RESPONSE_ID = /^resp_[A-Za-z0-9_-]{1,64}$/;
const MAX_INPUT_ITEMS = LIMITS.messages;
const MAX_METADATA_KEYS = 16;

export function validateResponsesRequest(body: unknown): ResponsesRequest {
  if (!isObject(body)) failBody(body);
  checkGatewayFields(body);
  for (const field of Object.keys(body)) {
    if (HOSTED.has(field)) fail(field, 'is an OpenAI-hosted feature this gateway does not offer');
    if (!KNOWN.has(field)) fail(field, 'unknown parameter');
  }
  checkInput(body['input']);
  optionalString(body, 'instructions');
  const previous = body['previous_response_id'];
  if (previous !== undefined && previous !== null) {
    if (typeof previous !== 'string' || !RESPONSE_ID.test(previous)) {
      fail('previous_response_id', "expected a response id ('resp_…')");
    }
  }
  checkTools(body);
  checkText(body['text']);
  checkInteger(body, 'max_output_tokens', 1, LIMITS.maxTokens);
  checkNumber(body, 'temperature', 0, 2);
  checkNumber(body, 'top_p', 0, 1);
  checkReasoning(body['reasoning']);
  checkMetadata(body['metadata']);
  optionalBoolean(body, 'store');
  optionalBoolean(body, 'stream');
  optionalBoolean(body, 'parallel_tool_calls');
  optionalString(body, 'user');
  optionalString(body, 'safety_identifier');
  optionalString(body, 'service_tier');
  const truncation = body['truncation'];
  if (truncation !== undefined && truncation !== null && truncation !== 'disabled' && truncation !== 'auto') {
    fail('truncation', "expected 'auto' or 'disabled'");
  }
  const include = body['include'];
  if (include !== undefined && include !== null) {
    if (!Array.isArray(include) || include.some((v) => typeof v !== 'string')) {
      fail('include', 'expected an array of strings');
    }
  }
  return body as unknown as ResponsesRequest;
}

function optionalString(body: Obj, field: string): void {
  const value = body[field];
  if (value !== undefined && value !== null && typeof value !== 'string') fail(field, 'expected a string');
}

function optionalBoolean(body: Obj, field: string): void {
  const value = body[field];
  if (value !== undefined && value !== null && typeof value !== 'boolean') fail(field, 'expected a boolean');
}

function checkInput(input: unknown): void {
  if (typeof input === 'string') {
    if (input.length === 0) fail('input', 'expected a non-empty string or a non-empty array of items');
    return;
  }
  if (!Array.isArray(input) || input.length === 0) {
    fail('input', 'expected a non-empty string or a non-empty array of items');
  }
  if (input.length > MAX_INPUT_ITEMS) fail('input', `expected at most ${MAX_INPUT_ITEMS} items`);
  input.forEach((item: unknown, i) => {
    checkItem(item, `input[${i}]`);
  });
}

function checkItem(item: unknown, path: string): void {
  if (!isObject(item)) fail(path, 'expected an object');
  // An easy input message may leave out `type`: a role and content make it a message.
  const type = item['type'] ?? (item['role'] !== undefined ? 'message' : undefined);
  switch (type) {
    case 'message':
      checkMessage(item, path);
      return;
    case 'function_call':
      nonEmptyString(item, 'call_id', path);
      nonEmptyString(item, 'name', path);
      if (typeof item['arguments'] !== 'string') fail(`${path}.arguments`, 'expected a JSON string');
      return;
    case 'function_call_output': {
      nonEmptyString(item, 'call_id', path);
      const output = item['output'];
      if (typeof output === 'string') return;
      if (!Array.isArray(output)) fail(`${path}.output`, 'expected a string or an array of content parts');
      output.forEach((part: unknown, k) => {
        checkPart(part, `${path}.output[${k}]`, 'user');
      });
      return;
    }
    case 'reasoning':
      // A reasoning item from another API's answer: only its own model could use it.
      return;
    default:
      fail(
        `${path}.type`,
        typeof type === 'string'
          ? `the '${type}' item is not supported; expected message, function_call or function_call_output`
          : 'expected message, function_call or function_call_output',
      );
  }
}

function nonEmptyString(item: Obj, field: string, path: string): void {
  const value = item[field];
  if (typeof value !== 'string' || value.length === 0)
    fail(`${path}.${field}`, 'expected a non-empty string');
}

function checkMessage(item: Obj, path: string): void {
  const role = item['role'];
  if (typeof role !== 'string' || !MESSAGE_ROLES.has(role)) {
    fail(`${path}.role`, 'expected one of user, assistant, system, developer');
  }
  const content = item['content'];
  if (typeof content === 'string') return;
  if (!Array.isArray(content)) fail(`${path}.content`, 'expected a string or an array of content parts');
  content.forEach((part: unknown, j) => {
    checkPart(part, `${path}.content[${j}]`, role);
  });
}

function checkPart(part: unknown, path: string, role: string): void {
  if (!isObject(part) || typeof part['type'] !== 'string') fail(path, 'expected a content part with a type');
  switch (part['type']) {
    case 'input_text':
    case 'output_text':
      if (typeof part['text'] !== 'string') fail(`${path}.text`, 'expected a string');
      return;
    case 'refusal':
      if (typeof part['refusal'] !== 'string') fail(`${path}.refusal`, 'expected a string');
      return;
    case 'input_image': {
      if (role === 'assistant') fail(`${path}.type`, 'images belong in user messages');
      const url = part['image_url'];
      if (typeof url !== 'string' || !/^(https?:\/\/|data:image\/)/i.test(url)) {
        fail(
          `${path}.image_url`,
          part['file_id'] !== undefined
            ? 'images given by file_id are not supported; send an http(s) or data: URL'
            : 'expected an http(s) URL or a data:image/… URL',
        );
      }
      const detail = part['detail'];
      if (detail !== undefined && detail !== 'auto' && detail !== 'low' && detail !== 'high') {
        fail(`${path}.detail`, "expected 'auto', 'low' or 'high'");
      }
      return;
    }
    default:
      fail(`${path}.type`, `the '${String(part['type'])}' part is not supported`);
  }
}

function checkTools(body: Obj): void {
  const tools = body['tools'];
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools) || tools.length > LIMITS.tools) {
      fail('tools', `expected an array of up to ${LIMITS.tools} tools`);
    }
    tools.forEach((tool: unknown, i) => {
      if (!isObject(tool)) fail(`tools[${i}]`, 'expected an object');
      if (tool['type'] !== 'function') {
        fail(
          `tools[${i}].type`,
          `only function tools are supported (the '${String(tool['type'])}' tool is hosted by OpenAI)`,
        );
      }
      nonEmptyString(tool, 'name', `tools[${i}]`);
      const parameters = tool['parameters'];
      if (parameters !== undefined && parameters !== null && !isObject(parameters)) {
        fail(`tools[${i}].parameters`, 'expected a JSON Schema object');
      }
    });
  }
  const choice = body['tool_choice'];
  if (choice === undefined || choice === null) return;
  if (choice === 'none' || choice === 'auto' || choice === 'required') return;
  if (!isObject(choice) || choice['type'] !== 'function' || typeof choice['name'] !== 'string') {
    fail('tool_choice', "expected 'none', 'auto', 'required' or { type: 'function', name }");
  }
}

function checkText(text: unknown): void {
  if (text === undefined || text === null) return;
  if (!isObject(text)) fail('text', 'expected an object');
  const format = text['format'];
  if (format === undefined || format === null) return;
  if (!isObject(format)) fail('text.format', 'expected an object');
  switch (format['type']) {
    case 'text':
    case 'json_object':
      return;
    case 'json_schema':
      nonEmptyString(format, 'name', 'text.format');
      if (!isObject(format['schema'])) fail('text.format.schema', 'expected a JSON Schema object');
      return;
    default:
      fail('text.format.type', "expected 'text', 'json_object' or 'json_schema'");
  }
}

function checkReasoning(reasoning: unknown): void {
  if (reasoning === undefined || reasoning === null) return;
  if (!isObject(reasoning)) fail('reasoning', 'expected an object');
  const effort = reasoning['effort'];
  if (effort !== undefined && effort !== null && (typeof effort !== 'string' || !EFFORTS.has(effort))) {
    fail('reasoning.effort', "expected 'none', 'minimal', 'low', 'medium' or 'high'");
  }
}

function checkMetadata(metadata: unknown): void {
  if (metadata === undefined || metadata === null) return;
  if (!isObject(metadata)) fail('metadata', 'expected an object of strings');
  const entries = Object.entries(metadata);
  if (entries.length > MAX_METADATA_KEYS) fail('metadata', `expected at most ${MAX_METADATA_KEYS} keys`);
  for (const [key, value] of entries) {
    if (key.length > 64) fail('metadata', 'keys are at most 64 characters');
    if (typeof value !== 'string' || value.length > 512) {
      fail(`metadata.${key.slice(0, 64)}`, 'expected a string of at most 512 characters');
    }
  }
}
