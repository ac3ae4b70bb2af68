/**
 * Adapter for Anthropic's Messages API (`POST /v1/messages`).
 *
 * Canonical requests are translated (anthropic-request.ts), answers and
 * streams translated back (anthropic-response.ts, anthropic-stream.ts).
 * `messages` and `streamMessages` send Anthropic-format bodies untranslated,
 * for the inbound `/v1/messages` API (src/api/anthropic/anthropic-dispatch.ts): an Anthropic client talking to an
 * Anthropic upstream must not lose anything to a round trip through OpenAI's
 * shape. Both paths share the HTTP call and the error mapping. `countTokens`
 * asks the upstream's own tokenizer (`POST /v1/messages/count_tokens`).
 *
 * `anthropic-beta` is merged per attempt: the configured betas first, then
 * those the client asked for (`ctx.upstreamHeaders`), each once.
 */
import { GatewayError } from '../../core/errors.ts';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  EmbeddingRequest,
  EmbeddingResponse,
  JsonObject,
} from '../../core/types.ts';
import { UpstreamClient, type UpstreamErrorMapper } from '../http.ts';
import type { AttemptContext, ProbeOptions, ProviderAdapter } from '../types.ts';
import { keyRedactor } from '../upstream-error.ts';
import type { EventReader } from '../upstream-event-stream.ts';
import type { JsonAnswerValue } from '../upstream-json-answer.ts';
import { mapAnthropicError } from './anthropic-error.ts';
import { toAnthropicRequest } from './anthropic-request.ts';
import { fromAnthropicMessage } from './anthropic-response.ts';
import { AnthropicChunkReader, AnthropicRawEventReader } from './anthropic-stream.ts';
import {
  ANTHROPIC_DEFAULT_VERSION,
  type AnthropicMessage,
  type CountTokensResponse,
} from './anthropic-wire.ts';

export interface AnthropicProviderOptions {
  name: string;
  /** Without `/v1`, as in Anthropic's SDKs: `https://api.anthropic.com`. */
  baseUrl: string;
  apiKey?: string | undefined;
  anthropicVersion?: string;
  headers?: Record<string, string>;
  maxConnections?: number;
  /** `max_tokens` sent when the client gives none (Anthropic requires one). */
  defaultMaxTokens?: number;
}

/** One Server-Sent Event as the upstream sent it (`data` not parsed). */
export interface AnthropicRawEvent {
  event: string;
  data: string;
}

/**
 * The Messages API itself, untranslated: what the inbound `/v1/messages`
 * route needs from a target to pass a client's body through.
 */
export interface AnthropicMessagesApi {
  /** The body as given (`stream` left as the client wrote it, unless true); the raw Messages response. */
  messages(body: JsonObject, ctx: AttemptContext): Promise<JsonObject>;
  /** Resolves once the upstream accepted; raw events then flow as they arrive, an `error` event thrown. */
  streamMessages(body: JsonObject, ctx: AttemptContext): Promise<AsyncIterable<AnthropicRawEvent>>;
  /** The upstream's exact count for a count_tokens body; its answer as sent (`input_tokens` checked). */
  countTokens(body: JsonObject, ctx: AttemptContext): Promise<CountTokensResponse & JsonObject>;
}

export function speaksAnthropic(
  provider: ProviderAdapter,
): provider is ProviderAdapter & AnthropicMessagesApi {
  return provider instanceof AnthropicProvider;
}

export class AnthropicProvider implements ProviderAdapter, AnthropicMessagesApi {
  readonly name: string;
  readonly type: string = 'anthropic';
  readonly #client: UpstreamClient;
  readonly #headers: Record<string, string>;
  readonly #configuredBetas: string[];
  readonly #redact: (text: string) => string;
  readonly #mapError: UpstreamErrorMapper;
  readonly #defaultMaxTokens: number;

  constructor(options: AnthropicProviderOptions) {
    this.name = options.name;
    this.#client = new UpstreamClient(options.baseUrl, { maxConnections: options.maxConnections });
    const { betas, others } = splitBetas(options.headers ?? {});
    this.#configuredBetas = betas;
    this.#headers = {
      'content-type': 'application/json',
      'anthropic-version': options.anthropicVersion ?? ANTHROPIC_DEFAULT_VERSION,
      ...others,
    };
    if (betas.length > 0) this.#headers[ANTHROPIC_BETA] = betas.join(',');
    if (options.apiKey) this.#headers['x-api-key'] = options.apiKey;
    this.#defaultMaxTokens = options.defaultMaxTokens ?? 4096;
    const key = options.apiKey;
    this.#redact = keyRedactor(key);
    this.#mapError = (status, headers, text) => mapAnthropicError(status, headers, text, this.#redact);
  }

  async chat(request: ChatRequest, ctx: AttemptContext): Promise<ChatCompletion> {
    const body = toAnthropicRequest(request, { defaultMaxTokens: this.#defaultMaxTokens });
    return fromAnthropicMessage(
      (await this.messages({ ...body, stream: false }, ctx)) as unknown as AnthropicMessage,
    );
  }

  async streamChat(request: ChatRequest, ctx: AttemptContext): Promise<AsyncIterable<ChatCompletionChunk>> {
    const body = {
      ...toAnthropicRequest(request, { defaultMaxTokens: this.#defaultMaxTokens }),
      stream: true,
    };
    return this.#postStream(body, ctx, new AnthropicChunkReader(this.#redact));
  }

  /** Passthrough: an Anthropic Messages body in, the raw Messages response out. */
  async messages(body: JsonObject, ctx: AttemptContext): Promise<JsonObject> {
    // A passthrough body goes as the client wrote it: `stream` is only overridden when it asks for SSE.
    const answer = await this.#postForJson(body['stream'] === true ? { ...body, stream: false } : body, ctx);
    const value = answer.value as AnthropicMessage | { type?: unknown };
    if (!value || typeof value !== 'object' || value.type !== 'message') {
      if (value && typeof value === 'object' && value.type === 'error') {
        // A 200 carrying an error body (some proxies do this): still an upstream failure.
        throw this.#mapError(502, answer.headers, JSON.stringify(value));
      }
      throw new GatewayError('upstream_bad_response', 'Upstream response is not an Anthropic message');
    }
    return value as JsonObject;
  }

  /** Passthrough streaming: resolves once the upstream accepted; raw SSE events then flow as they arrive. */
  async streamMessages(body: JsonObject, ctx: AttemptContext): Promise<AsyncIterable<AnthropicRawEvent>> {
    return this.#postStream({ ...body, stream: true }, ctx, new AnthropicRawEventReader(this.#redact));
  }

  async countTokens(body: JsonObject, ctx: AttemptContext): Promise<CountTokensResponse & JsonObject> {
    const value = (await this.#postForJson(body, ctx, '/v1/messages/count_tokens'))
      .value as JsonObject | null;
    const tokens = value?.['input_tokens'];
    if (typeof tokens !== 'number' || !Number.isInteger(tokens) || tokens < 0) {
      throw new GatewayError('upstream_bad_response', 'Upstream token count has no input_tokens');
    }
    return value as CountTokensResponse & JsonObject;
  }

  async embed(_request: EmbeddingRequest, _ctx: AttemptContext): Promise<EmbeddingResponse> {
    throw new GatewayError(
      'invalid_request',
      `Provider '${this.name}' is an Anthropic provider, and Anthropic offers no embeddings API`,
      { param: 'model' },
    );
  }

  /** Listing models spends no tokens and proves the key and the network path. */
  async check(signal: AbortSignal, options?: ProbeOptions): Promise<void> {
    await this.#client.probe('/v1/models', this.#headers, signal, this.#mapError, 500, options);
  }

  async close(): Promise<void> {
    await this.#client.close();
  }

  #postStream<T>(body: JsonObject, ctx: AttemptContext, reader: EventReader<T>): Promise<AsyncIterable<T>> {
    return this.#client.postEventStream(
      '/v1/messages',
      this.#headersFor(ctx),
      body,
      ctx,
      reader,
      this.#mapError,
    );
  }

  /** The provider's headers, with the client's betas (if any) merged after the configured ones. */
  #headersFor(ctx: AttemptContext): Record<string, string> {
    const clientBetas = ctx.upstreamHeaders?.[ANTHROPIC_BETA];
    if (clientBetas === undefined) return this.#headers;
    return { ...this.#headers, [ANTHROPIC_BETA]: betaNames(this.#configuredBetas, clientBetas).join(',') };
  }

  #postForJson(body: unknown, ctx: AttemptContext, path = '/v1/messages'): Promise<JsonAnswerValue> {
    return this.#client.postForJson(path, this.#headersFor(ctx), body, ctx, this.#mapError);
  }
}

/**
 * `anthropic-beta`: comma-separated beta feature names (`files-api-2025-04-14`, ...),
 * from the provider's config and, per attempt, from the client (src/api/anthropic/anthropic-beta.ts).
 */
export const ANTHROPIC_BETA = 'anthropic-beta';

/** Node joins repeated headers of unknown names with ', '; an array is accepted all the same. */
type HeaderValue = string | readonly string[] | undefined;

/** The beta names in header values, trimmed, each once, in order of first appearance. */
export function betaNames(...values: HeaderValue[]): string[] {
  const names = new Set<string>();
  for (const value of values) {
    if (value === undefined) continue;
    for (const line of typeof value === 'string' ? [value] : value) {
      for (const part of line.split(',')) {
        const name = part.trim();
        if (name !== '') names.add(name);
      }
    }
  }
  return [...names];
}

/** Configured headers with `anthropic-beta` (any case, as HTTP names are) taken out as a list of names. */
function splitBetas(headers: Record<string, string>): { betas: string[]; others: Record<string, string> } {
  const others: Record<string, string> = {};
  const values: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === ANTHROPIC_BETA) values.push(value);
    else others[name] = value;
  }
  return { betas: betaNames(values), others };
}
