export { AnthropicProvider, type AnthropicProviderOptions } from './anthropic-provider.ts';
export type * from './anthropic-wire.ts';
export { ANTHROPIC_DEFAULT_BASE_URL, ANTHROPIC_DEFAULT_VERSION } from './anthropic-wire.ts';
