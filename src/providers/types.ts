/**
 * The provider adapter contract.
 *
 * An adapter speaks one upstream wire format. It receives canonical (OpenAI
 * Chat Completions) requests whose `model` is already the upstream model id,
 * and returns canonical responses or stream chunks. It owns translation, the
 * HTTP call and error mapping; it owns no policy (retries, fallback, hedging,
 * breakers live in the routing layer and compose around these calls).
 *
 * Rules every adapter keeps, because the routing layer depends on them:
 * - Every call is abortable through `ctx.signal` (client gone, hedge lost).
 *   Aborting tears down the upstream socket promptly.
 * - Every failure is a `GatewayError` whose `code` says retryable or final.
 *   A failure before the stream's first chunk is thrown from `streamChat`
 *   itself, so the caller can still retry or fall back.
 * - Usage is reported per attempt: a non-streaming response carries `usage`;
 *   a stream ends with one chunk carrying `usage` (choices: []) whenever the
 *   upstream reported it, whether or not the client asked for it.
 */
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  EmbeddingRequest,
  EmbeddingResponse,
} from '../core/types.ts';

export interface Timeouts {
  /** TCP/TLS connect. */
  connectMs: number;
  /** From sending the request to the first byte of the response (headers). */
  firstByteMs: number;
  /** Whole attempt, including the full body or stream. */
  totalMs: number;
  /** Longest silence between two body chunks of a started response. */
  idleMs: number;
}

export interface AttemptContext {
  /** Aborts the attempt: client disconnect, hedge lost, deadline. */
  signal: AbortSignal;
  /** Sent upstream as `x-request-id` where the provider accepts one. */
  requestId: string;
  timeouts: Timeouts;
  /**
   * Client headers an inbound route asks to forward on this attempt, lower-case
   * names. Only a route that knows the target speaks its protocol sets it (the
   * Anthropic route, for Anthropic targets: `anthropic-beta`). Each adapter
   * takes only the names it knows and merges them under its own headers, so
   * authentication and the configured API version can never be overridden;
   * adapters that know none ignore the field.
   */
  upstreamHeaders?: Readonly<Record<string, string>>;
  /**
   * W3C trace context of the attempt's span (`traceparent`, `tracestate`),
   * added to the upstream request by the shared HTTP client, so the
   * provider's spans join the request's trace. Absent when tracing is off.
   */
  traceHeaders?: Readonly<Record<string, string>> | undefined;
}

export interface ProbeOptions {
  /** @default 2000 */
  connectMs?: number;
}

export interface ProviderAdapter {
  /** The name in config (`providers.<name>`). */
  readonly name: string;
  /** The adapter type (`openai`, `mock`, ...). */
  readonly type: string;
  chat(request: ChatRequest, ctx: AttemptContext): Promise<ChatCompletion>;
  /** Resolves once the upstream accepted the request (2xx headers); chunks then flow as they arrive. */
  streamChat(request: ChatRequest, ctx: AttemptContext): Promise<AsyncIterable<ChatCompletionChunk>>;
  embed(request: EmbeddingRequest, ctx: AttemptContext): Promise<EmbeddingResponse>;
  /**
   * Lightweight reachability check for readiness; must not spend tokens.
   * `connectMs`: the connect timeout whose pool it goes through, so warming
   * (src/server/warmup/) opens the connections requests with that timeout use.
   */
  check?(signal: AbortSignal, options?: ProbeOptions): Promise<void>;
  close(): Promise<void>;
}
