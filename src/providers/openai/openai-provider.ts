/**
 * Adapter for OpenAI and every OpenAI-compatible server (Ollama, vLLM, Groq,
 * Together, Mistral, DeepSeek...). The request body is forwarded as received,
 * unknown fields included, with two changes: `model` is the target's upstream
 * id, and streams always ask for usage (`stream_options.include_usage`) so
 * every streamed attempt can be billed exactly.
 */
import { GatewayError } from '../../core/errors.ts';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  EmbeddingRequest,
  EmbeddingResponse,
} from '../../core/types.ts';
import { attachWireText } from '../../core/wire-text.ts';
import { UpstreamClient, type UpstreamErrorMapper, withRequestId } from '../http.ts';
import type { AttemptContext, ProbeOptions, ProviderAdapter } from '../types.ts';
import { keyRedactor } from '../upstream-error.ts';
import { mapOpenAIError } from './openai-error.ts';
import { OpenAIChunkReader } from './openai-stream.ts';

export interface OpenAIProviderOptions {
  name: string;
  baseUrl: string;
  apiKey?: string | undefined;
  organization?: string | undefined;
  headers?: Record<string, string>;
  maxConnections?: number;
  /** How the key is sent: `Authorization: Bearer` (OpenAI) or `api-key` (Azure OpenAI). */
  keyHeader?: 'authorization' | 'api-key';
  /** Upstream path (and query) of an operation for a model; default `/<operation>` under the base URL. */
  pathFor?: (operation: OpenAIOperation, model: string) => string;
  /** Adapter type reported to the routing layer (`openai` unless a wrapper says otherwise). */
  type?: string;
}

export type OpenAIOperation = 'chat/completions' | 'embeddings' | 'models';

export class OpenAIProvider implements ProviderAdapter {
  readonly name: string;
  readonly type: string;
  readonly #client: UpstreamClient;
  readonly #pathFor: (operation: OpenAIOperation, model: string) => string;
  readonly #headers: Record<string, string>;
  readonly #redact: (text: string) => string;
  readonly #mapError: UpstreamErrorMapper;

  constructor(options: OpenAIProviderOptions) {
    this.name = options.name;
    this.type = options.type ?? 'openai';
    this.#pathFor = options.pathFor ?? ((operation) => `/${operation}`);
    this.#client = new UpstreamClient(options.baseUrl, { maxConnections: options.maxConnections });
    this.#headers = { 'content-type': 'application/json', ...options.headers };
    if (options.apiKey) {
      if (options.keyHeader === 'api-key') this.#headers['api-key'] = options.apiKey;
      else this.#headers['authorization'] = `Bearer ${options.apiKey}`;
    }
    if (options.organization) this.#headers['openai-organization'] = options.organization;
    const key = options.apiKey;
    this.#redact = keyRedactor(key);
    this.#mapError = (status, headers, text) => mapOpenAIError(status, headers, text, this.#redact);
  }

  async chat(request: ChatRequest, ctx: AttemptContext): Promise<ChatCompletion> {
    const body = { ...request, stream: false };
    delete body.stream_options;
    const value = (await this.#postForJson(
      this.#pathFor('chat/completions', request.model),
      body,
      ctx,
    )) as ChatCompletion;
    if (!value || typeof value !== 'object' || !Array.isArray(value.choices)) {
      if (value && typeof value === 'object' && 'error' in value) {
        throw this.#mapError(502, {}, JSON.stringify(value));
      }
      throw new GatewayError('upstream_bad_response', 'Upstream response has no choices');
    }
    return value;
  }

  async streamChat(request: ChatRequest, ctx: AttemptContext): Promise<AsyncIterable<ChatCompletionChunk>> {
    const body = {
      ...request,
      stream: true,
      stream_options: { ...request.stream_options, include_usage: true },
    };
    return this.#client.postEventStream(
      this.#pathFor('chat/completions', request.model),
      withRequestId(this.#headers, ctx),
      body,
      ctx,
      new OpenAIChunkReader(this.#redact),
      this.#mapError,
    );
  }

  async embed(request: EmbeddingRequest, ctx: AttemptContext): Promise<EmbeddingResponse> {
    const value = (await this.#postForJson(
      this.#pathFor('embeddings', request.model),
      request,
      ctx,
    )) as EmbeddingResponse;
    if (!value || typeof value !== 'object' || !Array.isArray(value.data)) {
      throw new GatewayError('upstream_bad_response', 'Upstream embeddings response has no data');
    }
    return value;
  }

  async check(signal: AbortSignal, options?: ProbeOptions): Promise<void> {
    // Only a server error fails readiness; its body is not quoted.
    await this.#client.probe(
      this.#pathFor('models', ''),
      this.#headers,
      signal,
      (status, headers) => this.#mapError(status, headers, ''),
      500,
      options,
    );
  }

  async close(): Promise<void> {
    await this.#client.close();
  }

  /** The parsed answer, an object marked with the text it was parsed from (core/wire-text.ts). */
  async #postForJson(path: string, body: unknown, ctx: AttemptContext): Promise<unknown> {
    const { value, text } = await this.#client.postForJson(
      path,
      withRequestId(this.#headers, ctx),
      body,
      ctx,
      this.#mapError,
    );
    // Kept so an answer to an OpenAI client can go out as it came (api/openai/model-swap.ts).
    return value !== null && typeof value === 'object' ? attachWireText(value, text) : value;
  }
}
