/**
 * `POST /v1/messages/count_tokens`: exact when the model's first active
 * target (config order, skipping targets an operator deactivated) is an
 * Anthropic provider, whose own `/v1/messages/count_tokens` counts the
 * client's body for the target's model; the gateway's estimate otherwise
 * (~4 characters a token, the ledger's usual one: the model's tokenizer lives
 * upstream). `x-switchyard-token-count: exact|estimate` says which (the
 * route sets it from `exact`).
 *
 * A count is advice, not a sale: an Anthropic upstream that cannot count
 * right now (a retryable failure: overloaded, rate limited, down) gives way
 * to the estimate, said so in the header; a request it refuses as invalid
 * is the client's error and answered as one. Nothing is billed: counting is
 * free upstream, so it leaves no ledger row.
 */
import { toGatewayError } from '../../core/errors.ts';
import { estimatePromptTokens, tokensForChars } from '../../core/token-estimate.ts';
import type { JsonObject } from '../../core/types.ts';
import {
  type AnthropicMessagesApi,
  type CountTokensRequest,
  type CountTokensResponse,
  speaksAnthropic,
} from '../../providers/anthropic/index.ts';
import type { AttemptContext, ProviderAdapter } from '../../providers/types.ts';
import type { ModelRoute, RouteTarget } from '../../routing/model-table.ts';
import { forwardedAnthropicHeaders } from './anthropic-beta.ts';
import { fromAnthropicPrompt } from './anthropic-inbound-request.ts';

export const TOKEN_COUNT_HEADER = 'x-switchyard-token-count';

/** What counting needs from the client's request. */
export interface CountTokensCall {
  requestId: string;
  /** The client's headers (its `anthropic-beta` goes to an Anthropic target). */
  headers: Record<string, string | string[] | undefined>;
  /** Fires when the client goes away before the answer: the upstream call is cancelled. */
  signal: AbortSignal;
  /** Whether a target is active (an operator may have deactivated it). */
  isActive: (targetId: string) => boolean;
  log: { warn(details: object, message: string): void };
}

export interface TokenCount {
  count: CountTokensResponse;
  /** The upstream counted (true), or this is the gateway's estimate (false). */
  exact: boolean;
}

export async function countTokens(
  route: ModelRoute,
  body: CountTokensRequest,
  call: CountTokensCall,
): Promise<TokenCount> {
  const target = route.targets.find((t) => call.isActive(t.id));
  if (target !== undefined && speaksAnthropic(target.provider)) {
    const exact = await exactCount(call, route, target, target.provider, body);
    if (exact !== undefined) return { count: exact, exact: true };
  }
  return { count: { input_tokens: estimateCount(body) }, exact: false };
}

/** The estimate: the prompt as the ledger would estimate it, plus the tool definitions' text. */
export function estimateCount(body: CountTokensRequest): number {
  const prompt = fromAnthropicPrompt(body);
  const toolChars = prompt.tools ? JSON.stringify(prompt.tools).length : 0;
  return estimatePromptTokens(prompt) + tokensForChars(toolChars);
}

/** The upstream's count, or undefined when it cannot count now (a retryable failure). */
async function exactCount(
  call: CountTokensCall,
  route: ModelRoute,
  target: RouteTarget,
  provider: ProviderAdapter & AnthropicMessagesApi,
  body: CountTokensRequest,
): Promise<CountTokensResponse | undefined> {
  const upstreamHeaders = forwardedAnthropicHeaders(call.headers);
  const ctx: AttemptContext = {
    signal: call.signal,
    requestId: call.requestId,
    timeouts: route.timeouts,
    ...(upstreamHeaders ? { upstreamHeaders } : {}),
  };
  try {
    return await provider.countTokens({ ...(body as JsonObject), model: target.model }, ctx);
  } catch (error) {
    const failure = toGatewayError(error);
    if (!failure.retryable || call.signal.aborted) throw error;
    call.log.warn(
      { provider: provider.name, code: failure.code },
      'upstream token count failed; answering the estimate',
    );
    return undefined;
  }
}
