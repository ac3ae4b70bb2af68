/**
 * GatewayError → OpenAI's error shape and status
 * (`{ "error": { "message", "type", "code", "param" } }`): how the gateway's
 * errors look to OpenAI clients, on the OpenAI routes and on every route that
 * names no renderer of its own (src/server/error-render.ts). A stream that
 * fails after its start sends the same body as its last `data:` frame.
 */
import { type GatewayError, openAIErrorBody } from '../../core/errors.ts';

export interface OpenAIErrorResponse {
  status: number;
  body: ReturnType<typeof openAIErrorBody>;
}

export function toOpenAIError(error: GatewayError): OpenAIErrorResponse {
  return { status: error.status, body: openAIErrorBody(error) };
}
