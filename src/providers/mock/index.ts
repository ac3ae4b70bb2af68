export { MockProvider, type MockProviderOptions, mockPromptTokens } from './mock-provider.ts';
