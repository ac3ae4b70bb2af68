/**
 * Adapter for the Gemini API (generativelanguage.googleapis.com, v1beta).
 *
 * The key travels in the `x-goog-api-key` header, never as `?key=` in the
 * URL: URLs end up in logs, traces and error messages. The model id becomes a
 * path segment, so it is checked against a strict pattern first (no `/`, `?`,
 * `#`, `@`, `%` can redirect the request elsewhere).
 *
 * Embeddings: one string → `:embedContent`, several → `:batchEmbedContents`.
 * Gemini reports no token usage for embeddings; the usage returned is an
 * estimate (~4 characters per token), as the ledger's estimates are, and
 * marked `USAGE_ESTIMATED` so the ledger row says so.
 */
import { GatewayError } from '../../core/errors.ts';
import { estimateEmbeddingTokens } from '../../core/token-estimate.ts';
import {
  type ChatCompletion,
  type ChatCompletionChunk,
  type ChatRequest,
  type EmbeddingRequest,
  type EmbeddingResponse,
  USAGE_ESTIMATED,
} from '../../core/types.ts';
import { UpstreamClient, type UpstreamErrorMapper, withRequestId } from '../http.ts';
import type { AttemptContext, ProbeOptions, ProviderAdapter } from '../types.ts';
import { keyRedactor } from '../upstream-error.ts';
import { mapGeminiError } from './gemini-error.ts';
import { toGeminiRequest } from './gemini-request.ts';
import { fromGeminiResponse } from './gemini-response.ts';
import { GeminiChunkReader } from './gemini-stream.ts';
import type {
  GeminiBatchEmbedResponse,
  GeminiEmbedRequest,
  GeminiEmbedResponse,
  GeminiResponse,
} from './gemini-wire.ts';

export interface GeminiProviderOptions {
  name: string;
  apiKey: string;
  /** Origin of the API (default https://generativelanguage.googleapis.com); `/v1beta/...` is appended. */
  baseUrl?: string;
  headers?: Record<string, string>;
  maxConnections?: number;
}

const MODEL_ID = /^[A-Za-z0-9._-]+$/;
const API_VERSION = '/v1beta';

export class GeminiProvider implements ProviderAdapter {
  readonly name: string;
  readonly type = 'gemini';
  readonly #client: UpstreamClient;
  readonly #headers: Record<string, string>;
  readonly #redact: (text: string) => string;
  readonly #mapError: UpstreamErrorMapper;

  constructor(options: GeminiProviderOptions) {
    this.name = options.name;
    this.#client = new UpstreamClient(options.baseUrl ?? 'https://generativelanguage.googleapis.com', {
      maxConnections: options.maxConnections,
    });
    this.#headers = {
      'content-type': 'application/json',
      ...options.headers,
      'x-goog-api-key': options.apiKey,
    };
    const key = options.apiKey;
    // Google error messages can quote the key; never relay it.
    this.#redact = keyRedactor(key);
    this.#mapError = (status, headers, text) => mapGeminiError(status, headers, text, this.#redact);
  }

  async chat(request: ChatRequest, ctx: AttemptContext): Promise<ChatCompletion> {
    const body = toGeminiRequest(request);
    const value = (await this.#postForJson(
      `${modelPath(request.model)}:generateContent`,
      body,
      ctx,
    )) as GeminiResponse;
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      throw new GatewayError('upstream_bad_response', 'Upstream response is not an object');
    }
    if ('error' in value) throw this.#mapError(502, {}, JSON.stringify(value));
    return fromGeminiResponse(value, request.model);
  }

  async streamChat(request: ChatRequest, ctx: AttemptContext): Promise<AsyncIterable<ChatCompletionChunk>> {
    const body = toGeminiRequest(request);
    return this.#client.postEventStream(
      `${modelPath(request.model)}:streamGenerateContent?alt=sse`,
      withRequestId(this.#headers, ctx),
      body,
      ctx,
      new GeminiChunkReader({ model: request.model, redact: this.#redact }),
      this.#mapError,
    );
  }

  async embed(request: EmbeddingRequest, ctx: AttemptContext): Promise<EmbeddingResponse> {
    const inputs = textInputs(request.input);
    const dimensions =
      typeof request.dimensions === 'number' ? { outputDimensionality: request.dimensions } : {};
    let vectors: number[][];
    if (typeof request.input === 'string') {
      const body: GeminiEmbedRequest = { content: { parts: [{ text: inputs[0]! }] }, ...dimensions };
      const value = (await this.#postForJson(
        `${modelPath(request.model)}:embedContent`,
        body,
        ctx,
      )) as GeminiEmbedResponse;
      vectors = [checkVector(value?.embedding?.values)];
    } else {
      const model = `models/${request.model}`;
      const body = {
        requests: inputs.map(
          (text): GeminiEmbedRequest => ({ model, content: { parts: [{ text }] }, ...dimensions }),
        ),
      };
      const value = (await this.#postForJson(
        `${modelPath(request.model)}:batchEmbedContents`,
        body,
        ctx,
      )) as GeminiBatchEmbedResponse;
      const embeddings = Array.isArray(value?.embeddings) ? value.embeddings : [];
      if (embeddings.length !== inputs.length) {
        throw new GatewayError('upstream_bad_response', 'Upstream returned a different number of embeddings');
      }
      vectors = embeddings.map((e) => checkVector(e?.values));
    }
    const tokens = estimateEmbeddingTokens(inputs);
    const base64 = request.encoding_format === 'base64';
    return {
      object: 'list',
      data: vectors.map((v, index) => ({
        object: 'embedding',
        index,
        embedding: base64 ? float32Base64(v) : v,
      })),
      model: request.model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
      [USAGE_ESTIMATED]: true,
    };
  }

  async check(signal: AbortSignal, options?: ProbeOptions): Promise<void> {
    await this.#client.probe(
      `${API_VERSION}/models?pageSize=1`,
      this.#headers,
      signal,
      this.#mapError,
      400,
      options,
    );
  }

  async close(): Promise<void> {
    await this.#client.close();
  }

  async #postForJson(path: string, body: unknown, ctx: AttemptContext): Promise<unknown> {
    return (
      await this.#client.postForJson(path, withRequestId(this.#headers, ctx), body, ctx, this.#mapError)
    ).value;
  }
}

function modelPath(model: string): string {
  const id = model.startsWith('models/') ? model.slice('models/'.length) : model;
  if (!MODEL_ID.test(id)) {
    throw new GatewayError('invalid_request', `Model id '${model}' is not a valid Gemini model id`, {
      param: 'model',
    });
  }
  return `${API_VERSION}/models/${id}`;
}

/** Gemini embeds text only; token-id inputs cannot be sent. */
function textInputs(input: EmbeddingRequest['input']): string[] {
  if (typeof input === 'string') return [input];
  if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'string')) {
    return input as string[];
  }
  throw new GatewayError(
    'invalid_request',
    'This provider embeds text only: input must be a string or an array of strings',
    {
      param: 'input',
    },
  );
}

function checkVector(values: unknown): number[] {
  if (!Array.isArray(values) || !values.every((x) => typeof x === 'number')) {
    throw new GatewayError('upstream_bad_response', 'Upstream embedding has no values');
  }
  return values;
}

function float32Base64(values: number[]): string {
  const buffer = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) buffer.writeFloatLE(values[i]!, i * 4);
  return buffer.toString('base64');
}
