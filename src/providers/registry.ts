/**
 * Builds provider adapters from config. The only place that switches on a
 * provider `type`; adding a provider means one folder and one case here.
 */
import type { ProviderConfig } from '../config/schema.ts';
import { AnthropicProvider } from './anthropic/index.ts';
import { AzureProvider } from './azure/index.ts';
import { GeminiProvider } from './gemini/index.ts';
import { MockProvider } from './mock/index.ts';
import { OpenAIProvider } from './openai/index.ts';
import type { ProviderAdapter } from './types.ts';

export function createProvider(name: string, config: ProviderConfig): ProviderAdapter {
  switch (config.type) {
    case 'openai':
      return new OpenAIProvider({
        name,
        baseUrl: config.base_url,
        apiKey: config.api_key,
        organization: config.organization,
        headers: config.headers,
        maxConnections: config.max_connections,
      });
    case 'anthropic':
      return new AnthropicProvider({
        name,
        baseUrl: config.base_url,
        apiKey: config.api_key,
        anthropicVersion: config.anthropic_version,
        headers: config.headers,
        maxConnections: config.max_connections,
        defaultMaxTokens: config.default_max_tokens,
      });
    case 'mock':
      return new MockProvider({
        name,
        latencyMs: config.latency_ms,
        streamDelayMs: config.stream_delay_ms,
        reply: config.reply,
      });
    case 'gemini':
      return new GeminiProvider({
        name,
        apiKey: config.api_key,
        baseUrl: config.base_url,
        headers: config.headers,
        maxConnections: config.max_connections,
      });
    case 'azure':
      return new AzureProvider({
        name,
        endpoint: config.endpoint,
        apiKey: config.api_key,
        apiVersion: config.api_version,
        deployments: config.deployments,
        headers: config.headers,
        maxConnections: config.max_connections,
      });
    default:
      // The OpenAI-compatible presets (src/providers/presets.ts): base_url already defaulted by the schema.
      return new OpenAIProvider({
        name,
        type: config.type,
        baseUrl: config.base_url,
        apiKey: config.api_key,
        headers: config.headers,
        maxConnections: config.max_connections,
      });
  }
}

export function createProviders(configs: Record<string, ProviderConfig>): Map<string, ProviderAdapter> {
  const providers = new Map<string, ProviderAdapter>();
  for (const [name, config] of Object.entries(configs)) providers.set(name, createProvider(name, config));
  return providers;
}
