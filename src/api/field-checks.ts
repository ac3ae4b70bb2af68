/**
 * Field checks every inbound API's validator uses (OpenAI's and Anthropic's):
 * refusing with the field named, type and bound checks, the gateway's own
 * limits, and the fields that would let a client choose where our provider
 * credentials are sent.
 */
import { GatewayError } from '../core/errors.ts';

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
