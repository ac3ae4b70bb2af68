/**
 * `POST /v1/messages/count_tokens`: exact when the model's first active
 * target (config order, skipping targets an operator deactivated) is an
 * Anthropic provider, whose own `/v1/messages/count_tokens` counts the
 * client's body for the target's model; the gateway's estimate otherwise
 * (~4 characters a token, the ledger's usual one: the model's tokenizer lives
 * upstream). `x-switchyard-token-count: exact|estimate` says which.
 *
 * A count is advice, not a sale: an Anthropic upstream that cannot count
 * right now (a retryable failure: overloaded, rate limited, down) gives way
 * to the estimate, said so in the header; a request it refuses as invalid
 * is the client's error and answered as one. Nothing is billed: counting is
 * free upstream, so it leaves no ledger row.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { forwardedAnthropicHeaders } from '../../api/anthropic/anthropic-beta.ts';
import { toChatPrompt } from '../../api/anthropic/anthropic-inbound-request.ts';
import { ClientClosedError, toGatewayError } from '../../core/errors.ts';
import { estimatePromptTokens } from '../../core/token-estimate.ts';
import type { JsonObject } from '../../core/types.ts';
import type { CountTokensRequest, CountTokensResponse } from '../../providers/anthropic/anthropic-wire.ts';
import { type AnthropicMessagesApi, speaksAnthropic } from '../../providers/anthropic/index.ts';
import type { AttemptContext, ProviderAdapter } from '../../providers/types.ts';
import type { ModelRoute, RouteTarget } from '../../routing/model-table.ts';
import type { GatewayContext } from '../context.ts';

export const TOKEN_COUNT_HEADER = 'x-switchyard-token-count';

export async function countTokens(
  gw: GatewayContext,
  request: FastifyRequest,
  reply: FastifyReply,
  route: ModelRoute,
  body: CountTokensRequest,
): Promise<CountTokensResponse> {
  const target = route.targets.find((t) => gw.router.isActive(t.id));
  if (target !== undefined && speaksAnthropic(target.provider)) {
    const exact = await exactCount(request, reply, route, target, target.provider, body);
    if (exact !== undefined) {
      reply.header(TOKEN_COUNT_HEADER, 'exact');
      return exact;
    }
  }
  reply.header(TOKEN_COUNT_HEADER, 'estimate');
  return { input_tokens: estimateCount(body) };
}

/** The estimate: the prompt as the ledger would estimate it, plus the tool definitions' text. */
export function estimateCount(body: CountTokensRequest): number {
  const prompt = toChatPrompt(body);
  const toolChars = prompt.tools ? JSON.stringify(prompt.tools).length : 0;
  return estimatePromptTokens(prompt) + Math.ceil(toolChars / 4);
}

/** The upstream's count, or undefined when it cannot count now (a retryable failure). */
async function exactCount(
  request: FastifyRequest,
  reply: FastifyReply,
  route: ModelRoute,
  target: RouteTarget,
  provider: ProviderAdapter & AnthropicMessagesApi,
  body: CountTokensRequest,
): Promise<CountTokensResponse | undefined> {
  // A client gone before the answer cancels the upstream call, as for a model request.
  const controller = new AbortController();
  const onClose = (): void => {
    if (!reply.raw.writableFinished) controller.abort(new ClientClosedError());
  };
  reply.raw.once('close', onClose);
  const upstreamHeaders = forwardedAnthropicHeaders(request.headers);
  const ctx: AttemptContext = {
    signal: controller.signal,
    requestId: request.id,
    timeouts: route.timeouts,
    ...(upstreamHeaders ? { upstreamHeaders } : {}),
  };
  try {
    return await provider.countTokens({ ...(body as JsonObject), model: target.model }, ctx);
  } catch (error) {
    const failure = toGatewayError(error);
    if (!failure.retryable || controller.signal.aborted) throw error;
    request.log.warn(
      { provider: provider.name, code: failure.code },
      'upstream token count failed; answering the estimate',
    );
    return undefined;
  } finally {
    reply.raw.off('close', onClose);
  }
}
