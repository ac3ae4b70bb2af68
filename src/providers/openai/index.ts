export { type OpenAIOperation, OpenAIProvider, type OpenAIProviderOptions } from './openai-provider.ts';
