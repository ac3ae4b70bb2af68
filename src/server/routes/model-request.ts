/**
 * Accounting shared by every route that calls a model (OpenAI's and
 * Anthropic's): the request's UsageRecorder and abort-on-close, and for
 * streams the tally of what was relayed and the attempt's final ledger row.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type GatewayError, toGatewayError } from '../../core/errors.ts';
import type { ChatCompletionChunk, Usage } from '../../core/types.ts';
import { ClientClosedError, type DispatchOptions } from '../../pipeline/dispatch.ts';
import { estimateCompletionTokens } from '../../pipeline/usage-estimate.ts';
import { type Attempt, UsageRecorder } from '../../pipeline/usage-recorder.ts';
import type { GatewayContext } from '../context.ts';

/**
 * Starts accounting for a model request: its UsageRecorder (ledger rows and
 * metrics) and an abort signal that fires when the client goes away before
 * the answer is complete (so the upstream call is cancelled and nobody pays
 * for tokens no one reads).
 */
export function beginModelRequest(
  gw: GatewayContext,
  request: FastifyRequest,
  reply: FastifyReply,
  info: { route: string; model: string; stream: boolean },
): DispatchOptions {
  const key = request.key!;
  const recorder = new UsageRecorder(gw.ledger, gw.metrics, {
    requestId: request.id,
    keyId: key.isMaster ? null : key.id,
    route: info.route,
    modelRequested: info.model,
    stream: info.stream,
  });
  request.usage = recorder;
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new ClientClosedError());
  });
  return { signal: controller.signal, requestId: request.id, recorder };
}

/**
 * Request-level metrics for a model request that failed before any answer;
 * `statusOf` gives the status the route answers with, when it differs from the gateway's.
 */
export function finishFailed(
  recorder: UsageRecorder,
  error: unknown,
  statusOf: (error: GatewayError) => number = (e) => e.status,
): never {
  recorder.finish(error instanceof ClientClosedError ? 499 : statusOf(toGatewayError(error)));
  throw error;
}

/** Counts what a stream relayed, so an attempt without upstream usage is still billed. */
export class StreamTally {
  readonly #attempt: Attempt;
  usage: Usage | undefined;
  #contentChunks = 0;
  #contentChars = 0;

  constructor(attempt: Attempt) {
    this.#attempt = attempt;
  }

  observe(chunk: ChatCompletionChunk): void {
    if (chunk.usage) this.usage = chunk.usage;
    for (const choice of chunk.choices) {
      const content = choice.delta.content;
      if (typeof content === 'string' && content.length > 0) {
        this.#contentChunks++;
        this.#contentChars += content.length;
        this.#attempt.markFirstToken();
      } else if (choice.delta.tool_calls) {
        this.#contentChunks++;
        this.#attempt.markFirstToken();
      }
    }
  }

  /** The upstream's usage, or an estimate from the prompt and the relayed content. */
  billed(estimatePromptTokens: () => number): { usage: Usage; source: 'upstream' | 'estimated' } {
    if (this.usage) return { usage: this.usage, source: 'upstream' };
    const prompt = estimatePromptTokens();
    const completion = estimateCompletionTokens(this.#contentChunks, this.#contentChars);
    return {
      usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
      source: 'estimated',
    };
  }
}

/**
 * Writes the ledger row and request metrics of a stream that has ended:
 * failed mid-way (`failure`), abandoned by the client, or complete.
 */
export function settleStream(
  attempt: Attempt,
  recorder: UsageRecorder,
  outcome: { failure: GatewayError | undefined; clientGone: boolean },
  billed: { usage: Usage; source: 'upstream' | 'estimated' },
): void {
  const { failure, clientGone } = outcome;
  if (failure) {
    attempt.end({
      status: failure.code === 'upstream_timeout' ? 'timeout' : 'error',
      httpStatus: failure.status,
      errorCode: failure.code,
      usage: billed.usage,
      usageSource: billed.source,
    });
    recorder.finish(failure.status);
    return;
  }
  if (clientGone) {
    attempt.end({
      status: 'client_closed',
      httpStatus: 499,
      errorCode: 'client_closed',
      usage: billed.usage,
      usageSource: billed.source,
    });
    recorder.finish(499);
    return;
  }
  attempt.end({ status: 'ok', httpStatus: 200, usage: billed.usage, usageSource: billed.source });
  recorder.finish(200);
}
