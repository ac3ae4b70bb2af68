/**
 * Sends a request to a model's targets: the first that answers wins; a
 * retryable failure moves on to the next target, a final one ends the request.
 *
 * Streams are committed to the client only once the first chunk has arrived,
 * so every failure before that point can still fall back, and a client that
 * gets a 200 gets content. (Retries, weights, breakers and hedging compose
 * around this loop in the routing layer.)
 */
import { GatewayError } from '../core/errors.ts';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  EmbeddingRequest,
  EmbeddingResponse,
} from '../core/types.ts';
import type { AttemptContext } from '../providers/types.ts';
import type { ModelRoute, RouteTarget } from './models.ts';
import type { Attempt, UsageRecorder } from './usage-recorder.ts';

export interface DispatchOptions {
  signal: AbortSignal;
  requestId: string;
  recorder: UsageRecorder;
  /** Prompt tokens to bill when a client abort leaves us without upstream usage. */
  estimatePromptTokens?: () => number;
  /** The Router's ordered candidates for this request (default: the model's targets in config order). */
  targets?: readonly RouteTarget[];
  /** Told when each attempt starts and ends (the Router's capacity and latency accounting). */
  observer?: AttemptObserver;
}

export interface AttemptObserver {
  onAttemptStart?(target: RouteTarget, estimatedTokens: number): void;
  onAttemptEnd(
    target: RouteTarget,
    outcome: { ok: boolean; errorCode?: string; latencyMs: number; ttftMs?: number },
  ): void;
}

export interface StreamStart {
  attempt: Attempt;
  first: ChatCompletionChunk;
  rest: AsyncIterator<ChatCompletionChunk>;
}

/** Thrown when the client went away; not an upstream failure. */
export class ClientClosedError extends Error {
  override readonly name = 'ClientClosedError';
  constructor() {
    super('client closed the connection');
  }
}

async function tryTargets<T>(
  route: ModelRoute,
  options: DispatchOptions,
  call: (target: RouteTarget, ctx: AttemptContext, attempt: Attempt) => Promise<T>,
  stream = false,
): Promise<T> {
  let lastError: GatewayError | undefined;
  const observer = options.observer;
  for (const target of options.targets ?? route.targets) {
    if (options.signal.aborted) break;
    const attempt = options.recorder.attempt(target.provider.name, target.model);
    const ctx: AttemptContext = {
      signal: options.signal,
      requestId: options.requestId,
      timeouts: route.timeouts,
    };
    const started = performance.now();
    observer?.onAttemptStart?.(target, options.estimatePromptTokens?.() ?? 0);
    try {
      const result = await call(target, ctx, attempt);
      // For a stream this is the time to its first chunk: what the caller waited for.
      const latencyMs = performance.now() - started;
      observer?.onAttemptEnd(
        target,
        stream ? { ok: true, latencyMs, ttftMs: latencyMs } : { ok: true, latencyMs },
      );
      return result;
    } catch (error) {
      if (options.signal.aborted) {
        // The upstream may already have read (and will bill) the prompt.
        const prompt = options.estimatePromptTokens?.() ?? 0;
        attempt.end({
          status: 'client_closed',
          httpStatus: 499,
          errorCode: 'client_closed',
          usage: { prompt_tokens: prompt, completion_tokens: 0, total_tokens: prompt },
          usageSource: prompt > 0 ? 'estimated' : 'none',
        });
        throw new ClientClosedError();
      }
      const failure = GatewayError.is(error)
        ? error
        : new GatewayError('upstream_error', 'Upstream call failed', { cause: error });
      attempt.end({
        status: failure.code === 'upstream_timeout' ? 'timeout' : 'error',
        httpStatus: failure.status,
        errorCode: failure.code,
        usageSource: 'none',
      });
      observer?.onAttemptEnd(target, {
        ok: false,
        errorCode: failure.code,
        latencyMs: performance.now() - started,
      });
      if (!failure.retryable) throw failure;
      lastError = failure;
    }
  }
  if (options.signal.aborted) throw new ClientClosedError();
  throw lastError ?? new GatewayError('upstream_error', 'No target could serve the request');
}

export function dispatchChat(
  route: ModelRoute,
  request: ChatRequest,
  options: DispatchOptions,
): Promise<{ completion: ChatCompletion; attempt: Attempt }> {
  return tryTargets(route, options, async (target, ctx, attempt) => {
    const completion = await target.provider.chat({ ...request, model: target.model }, ctx);
    return { completion, attempt };
  });
}

export function dispatchChatStream(
  route: ModelRoute,
  request: ChatRequest,
  options: DispatchOptions,
): Promise<StreamStart> {
  return tryTargets(
    route,
    options,
    async (target, ctx, attempt) => {
      const stream = await target.provider.streamChat({ ...request, model: target.model }, ctx);
      const iterator = stream[Symbol.asyncIterator]();
      let first: IteratorResult<ChatCompletionChunk>;
      try {
        first = await iterator.next();
      } catch (error) {
        await iterator.return?.().catch(() => undefined);
        throw error;
      }
      if (first.done)
        throw new GatewayError('upstream_bad_response', 'Upstream stream ended without any chunk');
      return { attempt, first: first.value, rest: iterator };
    },
    true,
  );
}

export function dispatchEmbeddings(
  route: ModelRoute,
  request: EmbeddingRequest,
  options: DispatchOptions,
): Promise<{ response: EmbeddingResponse; attempt: Attempt }> {
  return tryTargets(route, options, async (target, ctx, attempt) => {
    const response = await target.provider.embed({ ...request, model: target.model }, ctx);
    return { response, attempt };
  });
}
