export type * from '../../protocols/anthropic/anthropic-wire.ts';
export {
  ANTHROPIC_DEFAULT_BASE_URL,
  ANTHROPIC_DEFAULT_VERSION,
} from '../../protocols/anthropic/anthropic-wire.ts';
export { AnthropicProvider, type AnthropicProviderOptions } from './anthropic-provider.ts';
