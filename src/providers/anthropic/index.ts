/**
 * The Anthropic provider (outbound: gateway → Anthropic's Messages API), and
 * the wire knowledge the inbound `/v1/messages` API (src/api/anthropic/) reads
 * too: the wire types and the tables that translate in both directions (stop
 * reasons, usage, tool calls, error types), each written once, here.
 */

export { errorTypeOfStatus, statusOfErrorType } from './anthropic-error.ts';
export {
  ANTHROPIC_BETA,
  type AnthropicMessagesApi,
  AnthropicProvider,
  type AnthropicProviderOptions,
  type AnthropicRawEvent,
  betaNames,
  speaksAnthropic,
} from './anthropic-provider.ts';
export { type StopInfo, toFinishReason, toStopInfo } from './anthropic-stop.ts';
export {
  fromAnthropicTool,
  fromAnthropicToolChoice,
  fromAnthropicToolUse,
  toAnthropicTool,
  toAnthropicToolChoice,
} from './anthropic-tools.ts';
export { fromCanonicalUsage, mergeStreamUsage, toCanonicalUsage } from './anthropic-usage.ts';
export type * from './anthropic-wire.ts';
export {
  ANTHROPIC_DEFAULT_BASE_URL,
  ANTHROPIC_DEFAULT_VERSION,
} from './anthropic-wire.ts';
