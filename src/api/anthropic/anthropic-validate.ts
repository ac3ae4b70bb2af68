/**
 * Shape checks for inbound Anthropic Messages bodies, before any translation
 * or upstream call. Every refusal names the field at fault (`messages[2].content[0].source.data`).
 *
 * Checks are about structure and bounds (what our translation and bills rely
 * on); block and tool types this gateway cannot serve on a non-Anthropic
 * target are refused later, by the translation, because an Anthropic target
 * can take them as they are.
 */

import type { CountTokensRequest, MessagesRequest } from '../../providers/anthropic/index.ts';
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

type Obj = Record<string, unknown>;

function checkTextBlock(block: Obj, path: string): void {
  if (typeof block['text'] !== 'string') fail(`${path}.text`, 'expected a string');
}

function checkImageBlock(block: Obj, path: string): void {
  const source = block['source'];
  if (!isObject(source)) fail(`${path}.source`, 'expected an object');
  switch (source['type']) {
    case 'base64':
      if (typeof source['media_type'] !== 'string' || !source['media_type'].startsWith('image/')) {
        fail(`${path}.source.media_type`, 'expected an image media type such as image/png');
      }
      if (typeof source['data'] !== 'string' || source['data'].length === 0) {
        fail(`${path}.source.data`, 'expected base64 image data');
      }
      return;
    case 'url':
      if (typeof source['url'] !== 'string' || !/^https?:\/\//i.test(source['url'])) {
        fail(`${path}.source.url`, 'expected an http(s) URL');
      }
      return;
    case 'file':
      if (typeof source['file_id'] !== 'string') fail(`${path}.source.file_id`, 'expected a string');
      return;
    default:
      fail(`${path}.source.type`, "expected 'base64', 'url' or 'file'");
  }
}

function checkBlock(block: unknown, path: string, role: string): void {
  if (!isObject(block) || typeof block['type'] !== 'string')
    fail(path, 'expected a content block with a type');
  switch (block['type']) {
    case 'text':
      checkTextBlock(block, path);
      return;
    case 'image':
      checkImageBlock(block, path);
      return;
    case 'tool_use':
      if (role !== 'assistant') fail(`${path}.type`, 'tool_use blocks belong in assistant messages');
      if (typeof block['id'] !== 'string' || block['id'].length === 0)
        fail(`${path}.id`, 'expected a string');
      if (typeof block['name'] !== 'string' || block['name'].length === 0) {
        fail(`${path}.name`, 'expected a string');
      }
      if (!isObject(block['input'])) fail(`${path}.input`, 'expected an object');
      return;
    case 'tool_result': {
      if (role !== 'user') fail(`${path}.type`, 'tool_result blocks belong in user messages');
      if (typeof block['tool_use_id'] !== 'string' || block['tool_use_id'].length === 0) {
        fail(`${path}.tool_use_id`, 'expected a string');
      }
      const content = block['content'];
      if (Array.isArray(content)) {
        content.forEach((inner, k) => {
          const innerPath = `${path}.content[${k}]`;
          if (!isObject(inner) || (inner['type'] !== 'text' && inner['type'] !== 'image')) {
            fail(innerPath, 'expected a text or image block');
          }
          if (inner['type'] === 'text') checkTextBlock(inner, innerPath);
          else checkImageBlock(inner, innerPath);
        });
      } else if (content !== undefined && typeof content !== 'string') {
        fail(`${path}.content`, 'expected a string or an array of text and image blocks');
      }
      if (block['is_error'] !== undefined && typeof block['is_error'] !== 'boolean') {
        fail(`${path}.is_error`, 'expected a boolean');
      }
      return;
    }
    default:
      // thinking, document, server tool results...: an Anthropic target takes them as they are.
      return;
  }
}

function checkMessages(body: Obj): void {
  const messages = checkMessageList(body);
  messages.forEach((message: unknown, i) => {
    if (!isObject(message)) fail(`messages[${i}]`, 'expected an object');
    const role = message['role'];
    if (role !== 'user' && role !== 'assistant')
      fail(`messages[${i}].role`, "expected 'user' or 'assistant'");
    const content = message['content'];
    if (typeof content === 'string') return;
    if (!Array.isArray(content))
      fail(`messages[${i}].content`, 'expected a string or an array of content blocks');
    content.forEach((block: unknown, j) => {
      checkBlock(block, `messages[${i}].content[${j}]`, role);
    });
  });
}

function checkSystem(body: Obj): void {
  const system = body['system'];
  if (system === undefined || typeof system === 'string') return;
  if (!Array.isArray(system)) fail('system', 'expected a string or an array of text blocks');
  system.forEach((block: unknown, i) => {
    if (!isObject(block) || block['type'] !== 'text') fail(`system[${i}]`, 'expected a text block');
    checkTextBlock(block, `system[${i}]`);
  });
}

function checkTools(body: Obj): void {
  const tools = body['tools'];
  if (tools !== undefined) {
    if (!Array.isArray(tools) || tools.length > LIMITS.tools)
      fail('tools', `expected an array of up to ${LIMITS.tools} tools`);
    tools.forEach((tool: unknown, i) => {
      if (!isObject(tool)) fail(`tools[${i}]`, 'expected an object');
      if (typeof tool['name'] !== 'string' || tool['name'].length === 0)
        fail(`tools[${i}].name`, 'expected a string');
      const custom = tool['type'] === undefined || tool['type'] === null || tool['type'] === 'custom';
      if (custom && !isObject(tool['input_schema']))
        fail(`tools[${i}].input_schema`, 'expected a JSON Schema object');
    });
  }
  const choice = body['tool_choice'];
  if (choice === undefined) return;
  if (!isObject(choice)) fail('tool_choice', 'expected an object');
  const type = choice['type'];
  if (type !== 'auto' && type !== 'any' && type !== 'tool' && type !== 'none') {
    fail('tool_choice.type', "expected 'auto', 'any', 'tool' or 'none'");
  }
  if (type === 'tool' && typeof choice['name'] !== 'string') fail('tool_choice.name', 'expected a tool name');
  const parallel = choice['disable_parallel_tool_use'];
  if (parallel !== undefined && typeof parallel !== 'boolean') {
    fail('tool_choice.disable_parallel_tool_use', 'expected a boolean');
  }
}

/** What count_tokens and messages share. */
function checkPrompt(body: unknown): asserts body is Obj {
  if (!isObject(body)) failBody(body);
  checkGatewayFields(body);
  checkSystem(body);
  checkMessages(body);
  checkTools(body);
  const thinking = body['thinking'];
  if (thinking !== undefined && (!isObject(thinking) || typeof thinking['type'] !== 'string')) {
    fail('thinking', 'expected an object with a type');
  }
}

export function validateMessagesRequest(body: unknown): MessagesRequest {
  checkPrompt(body);
  // Anthropic requires max_tokens: there is no server-side default to fall back on.
  if (body['max_tokens'] === undefined) fail('max_tokens', 'required');
  checkInteger(body, 'max_tokens', 1, LIMITS.maxTokens);
  checkNumber(body, 'temperature', 0, 1);
  checkNumber(body, 'top_p', 0, 1);
  checkInteger(body, 'top_k', 0, 1_000_000);
  const stream = body['stream'];
  if (stream !== undefined && typeof stream !== 'boolean') fail('stream', 'expected a boolean');
  const stops = body['stop_sequences'];
  if (stops !== undefined) {
    const ok =
      Array.isArray(stops) &&
      stops.length <= LIMITS.stopSequences &&
      stops.every((s) => typeof s === 'string');
    if (!ok) fail('stop_sequences', `expected an array of up to ${LIMITS.stopSequences} strings`);
  }
  const metadata = body['metadata'];
  if (metadata !== undefined) {
    if (!isObject(metadata)) fail('metadata', 'expected an object');
    const userId = metadata['user_id'];
    if (userId !== undefined && userId !== null && typeof userId !== 'string') {
      fail('metadata.user_id', 'expected a string');
    }
  }
  return body as MessagesRequest;
}

export function validateCountTokensRequest(body: unknown): CountTokensRequest {
  checkPrompt(body);
  return body as CountTokensRequest;
}
