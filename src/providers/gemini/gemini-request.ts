/**
 * Canonical chat request → Gemini `generateContent` request.
 *
 * Gemini differs from Chat Completions in ways that need care:
 * - system/developer messages go to `systemInstruction`, not the turn list;
 * - turns alternate `user`/`model`, so consecutive messages of one role merge;
 * - a function result names its function but Chat Completions only gives the
 *   call id, so the name is recovered from the assistant turn that made the call;
 * - tool parameter schemas are an OpenAPI subset: keys Gemini rejects are dropped.
 * Anything that cannot be expressed is a 400 naming the field, never a silent drop.
 */

import { GatewayError } from '../../core/errors.ts';
import { toolInputOf } from '../../core/tool-calls.ts';
import type { ChatMessage, ChatRequest, ContentPart, JsonObject } from '../../core/types.ts';
import type { GeminiContent, GeminiGenerationConfig, GeminiPart, GeminiRequest } from './gemini-wire.ts';

export function toGeminiRequest(request: ChatRequest): GeminiRequest {
  const system: GeminiPart[] = [];
  const contents: GeminiContent[] = [];
  const callNames = new Map<string, string>();
  request.messages.forEach((message, index) => {
    const where = `messages[${index}]`;
    switch (message.role) {
      case 'system':
      case 'developer':
        system.push(...textParts(message.content, where));
        return;
      case 'user':
        append(contents, 'user', userParts(message.content, where));
        return;
      case 'assistant':
        append(contents, 'model', assistantParts(message, where, callNames));
        return;
      case 'tool':
      case 'function':
        append(contents, 'user', [functionResponsePart(message, where, callNames)]);
        return;
      default:
        throw invalid(`${where}.role`, `Unsupported message role '${String(message.role)}'`);
    }
  });
  const out: GeminiRequest = { contents };
  if (system.length > 0) out.systemInstruction = { parts: system };
  const tools = toolDeclarations(request);
  if (tools) out.tools = tools;
  const toolConfig = toolChoice(request.tool_choice);
  if (toolConfig) out.toolConfig = toolConfig;
  const generationConfig = generation(request);
  if (Object.keys(generationConfig).length > 0) out.generationConfig = generationConfig;
  return out;
}

function invalid(param: string, message: string): GatewayError {
  return new GatewayError('invalid_request', message, { param });
}

function append(contents: GeminiContent[], role: 'user' | 'model', parts: GeminiPart[]): void {
  if (parts.length === 0) return;
  const last = contents[contents.length - 1];
  if (last && last.role === role) last.parts.push(...parts);
  else contents.push({ role, parts });
}

function textParts(content: ChatMessage['content'], where: string): GeminiPart[] {
  if (content === null || content === undefined) return [];
  if (typeof content === 'string') return content.length > 0 ? [{ text: content }] : [];
  return content.map((part, i) => {
    if (part.type !== 'text') throw invalid(`${where}.content[${i}]`, 'Only text parts are allowed here');
    return { text: String(part['text'] ?? '') };
  });
}

function userParts(content: ChatMessage['content'], where: string): GeminiPart[] {
  if (!Array.isArray(content)) return textParts(content, where);
  return content.map((part, i) => contentPart(part, `${where}.content[${i}]`));
}

function contentPart(part: ContentPart, where: string): GeminiPart {
  if (part.type === 'text') return { text: String(part['text'] ?? '') };
  if (part.type === 'image_url') {
    const image = part['image_url'] as { url?: unknown } | undefined;
    const url = typeof image?.url === 'string' ? image.url : '';
    return imagePart(url, where);
  }
  if (part.type === 'input_audio') {
    const audio = part['input_audio'] as { data?: unknown; format?: unknown } | undefined;
    if (typeof audio?.data !== 'string' || typeof audio.format !== 'string') {
      throw invalid(where, 'input_audio needs data and format');
    }
    return { inlineData: { mimeType: `audio/${audio.format}`, data: audio.data } };
  }
  throw invalid(where, `Content part type '${part.type}' is not supported by this provider`);
}

const DATA_URL = /^data:([\w.+-]+\/[\w.+-]+)(?:;[^,;]*)*;base64,(.*)$/s;

function imagePart(url: string, where: string): GeminiPart {
  const data = DATA_URL.exec(url);
  if (data) return { inlineData: { mimeType: data[1]!, data: data[2]! } };
  if (/^https?:\/\//i.test(url)) return { fileData: { mimeType: mimeFromUrl(url), fileUri: url } };
  throw invalid(where, 'image_url.url must be an http(s) URL or a base64 data: URL');
}

const EXTENSION_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  heic: 'image/heic',
  heif: 'image/heif',
};

/** Gemini wants a MIME type with every file URI; the extension is all a URL offers. */
function mimeFromUrl(url: string): string {
  const extension = /\.([a-z0-9]+)$/i.exec(new URL(url).pathname)?.[1]?.toLowerCase();
  return (extension && EXTENSION_TYPES[extension]) || 'image/jpeg';
}

function assistantParts(message: ChatMessage, where: string, callNames: Map<string, string>): GeminiPart[] {
  const parts = textParts(message.content, where);
  (message.tool_calls ?? []).forEach((call, i) => {
    const name = call.function?.name;
    if (typeof name !== 'string' || name.length === 0) {
      throw invalid(`${where}.tool_calls[${i}].function.name`, 'A tool call needs a function name');
    }
    callNames.set(call.id, name);
    parts.push({ functionCall: { name, args: parseArguments(call.function.arguments, where, i) } });
  });
  return parts;
}

function parseArguments(text: string | undefined, where: string, i: number): JsonObject {
  const input = toolInputOf(text);
  if (input) return input;
  throw invalid(`${where}.tool_calls[${i}].function.arguments`, 'Tool call arguments must be a JSON object');
}

function functionResponsePart(
  message: ChatMessage,
  where: string,
  callNames: Map<string, string>,
): GeminiPart {
  const id = message.tool_call_id;
  const name = (id !== undefined ? callNames.get(id) : undefined) ?? message.name;
  if (!name) {
    throw invalid(
      `${where}.tool_call_id`,
      `No earlier assistant tool call has id '${id ?? ''}': cannot name the function this result is for`,
    );
  }
  const text =
    typeof message.content === 'string'
      ? message.content
      : textParts(message.content, where)
          .map((p) => p.text)
          .join('');
  return { functionResponse: { name, response: responseObject(text) } };
}

/** Gemini wants an object; JSON objects go as they are, anything else is wrapped as `{content}`. */
function responseObject(text: string): JsonObject {
  try {
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as JsonObject;
  } catch {
    // Plain text result.
  }
  return { content: text };
}

function toolDeclarations(request: ChatRequest): GeminiRequest['tools'] {
  const tools = request.tools;
  if (!Array.isArray(tools) || tools.length === 0) return undefined;
  const declarations = tools.map((tool, i) => {
    if (tool.type !== 'function' || typeof tool.function?.name !== 'string') {
      throw invalid(`tools[${i}]`, 'Only function tools are supported by this provider');
    }
    const { name, description, parameters } = tool.function;
    const schema = parameters ? cleanSchema(parameters) : undefined;
    return {
      name,
      ...(description ? { description } : {}),
      ...(schema && Object.keys(schema).length > 0 ? { parameters: schema } : {}),
    };
  });
  return [{ functionDeclarations: declarations }];
}

/** The keys of Gemini's `Schema` object; everything else (additionalProperties, $schema, $ref...) is rejected upstream. */
const SCHEMA_KEYS = new Set([
  'type',
  'format',
  'title',
  'description',
  'nullable',
  'enum',
  'maxItems',
  'minItems',
  'properties',
  'required',
  'minProperties',
  'maxProperties',
  'minLength',
  'maxLength',
  'pattern',
  'example',
  'anyOf',
  'propertyOrdering',
  'default',
  'items',
  'minimum',
  'maximum',
]);

export function cleanSchema(schema: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    if (!SCHEMA_KEYS.has(key)) continue;
    if (key === 'type' && Array.isArray(value)) {
      // JSON Schema's ["string", "null"] is Gemini's type + nullable.
      const types = value.filter((t) => t !== 'null');
      if (types.length === 1) out['type'] = types[0];
      if (types.length < value.length) out['nullable'] = true;
    } else if (key === 'properties' && isObject(value)) {
      const properties: JsonObject = {};
      for (const [name, sub] of Object.entries(value))
        properties[name] = isObject(sub) ? cleanSchema(sub) : sub;
      out[key] = properties;
    } else if (key === 'items' && isObject(value)) {
      out[key] = cleanSchema(value);
    } else if (key === 'anyOf' && Array.isArray(value)) {
      out[key] = value.map((sub) => (isObject(sub) ? cleanSchema(sub) : sub));
    } else {
      out[key] = value;
    }
  }
  return out;
}

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function toolChoice(choice: unknown): GeminiRequest['toolConfig'] {
  if (choice === undefined || choice === null) return undefined;
  if (choice === 'auto') return { functionCallingConfig: { mode: 'AUTO' } };
  if (choice === 'none') return { functionCallingConfig: { mode: 'NONE' } };
  if (choice === 'required') return { functionCallingConfig: { mode: 'ANY' } };
  if (isObject(choice) && isObject(choice['function']) && typeof choice['function']['name'] === 'string') {
    return { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: [choice['function']['name']] } };
  }
  throw invalid('tool_choice', "tool_choice must be 'auto', 'none', 'required' or a named function");
}

function generation(request: ChatRequest): GeminiGenerationConfig {
  const config: GeminiGenerationConfig = {};
  if (typeof request.temperature === 'number') config.temperature = request.temperature;
  if (typeof request.top_p === 'number') config.topP = request.top_p;
  const max = request.max_completion_tokens ?? request.max_tokens;
  if (typeof max === 'number') config.maxOutputTokens = max;
  if (typeof request.stop === 'string') config.stopSequences = [request.stop];
  else if (Array.isArray(request.stop) && request.stop.length > 0) config.stopSequences = request.stop;
  if (typeof request.n === 'number' && request.n !== 1) config.candidateCount = request.n;
  if (typeof request['presence_penalty'] === 'number') config.presencePenalty = request['presence_penalty'];
  if (typeof request['frequency_penalty'] === 'number')
    config.frequencyPenalty = request['frequency_penalty'];
  if (typeof request['seed'] === 'number') config.seed = request['seed'];
  const format = request['response_format'];
  if (isObject(format)) {
    if (format['type'] === 'json_object') config.responseMimeType = 'application/json';
    else if (format['type'] === 'json_schema') {
      config.responseMimeType = 'application/json';
      const schema = isObject(format['json_schema']) ? format['json_schema']['schema'] : undefined;
      if (isObject(schema)) config.responseSchema = cleanSchema(schema);
    }
  }
  return config;
}
