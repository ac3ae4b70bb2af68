export type * from '../../protocols/anthropic/anthropic-wire.ts';
export {
  ANTHROPIC_DEFAULT_BASE_URL,
  ANTHROPIC_DEFAULT_VERSION,
} from '../../protocols/anthropic/anthropic-wire.ts';
export {
  type AnthropicMessagesApi,
  AnthropicProvider,
  type AnthropicProviderOptions,
  type AnthropicRawEvent,
  speaksAnthropic,
} from './anthropic-provider.ts';
