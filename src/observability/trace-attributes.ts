/**
 * Attribute names on the gateway's spans: OpenTelemetry semantic conventions
 * (semantic-conventions 1.45: HTTP and error attributes are stable; the GenAI
 * ones are still incubating and, as that package advises, copied here rather
 * than imported from its `incubating` entry, which may change in any minor
 * release; test/unit/trace-attributes.test.ts checks them against it), and
 * `switchyard.*` for what the conventions do not name.
 */

export const ATTR = {
  httpRequestMethod: 'http.request.method',
  httpRoute: 'http.route',
  httpResponseStatusCode: 'http.response.status_code',
  errorType: 'error.type',
  genAiOperationName: 'gen_ai.operation.name',
  genAiProviderName: 'gen_ai.provider.name',
  genAiRequestModel: 'gen_ai.request.model',
  genAiRequestStream: 'gen_ai.request.stream',
  genAiUsageInputTokens: 'gen_ai.usage.input_tokens',
  genAiUsageOutputTokens: 'gen_ai.usage.output_tokens',
  genAiUsageCacheReadInputTokens: 'gen_ai.usage.cache_read.input_tokens',
  /** Prompt text: only with content capture on. */
  genAiInputMessages: 'gen_ai.input.messages',
  requestId: 'switchyard.request_id',
  /** The provider's name in config (`providers.<name>`); gen_ai.provider.name says which kind it is. */
  provider: 'switchyard.provider',
  target: 'switchyard.target',
  attemptNumber: 'switchyard.attempt.number',
  /** How the attempt ended, as its ledger row says: ok, error, timeout, client_closed, hedge_lost. */
  attemptStatus: 'switchyard.attempt.status',
  attempts: 'switchyard.attempts',
  cacheStatus: 'switchyard.cache.status',
  /** Set when a lookup asked one tier only (`memory`: the in-process answer before dispatch). */
  cacheTier: 'switchyard.cache.tier',
  candidates: 'switchyard.routing.candidates',
  firstTarget: 'switchyard.routing.first_target',
  ledgerRows: 'switchyard.ledger.rows',
  costUsd: 'switchyard.cost_usd',
  clientClosed: 'switchyard.client_closed',
  keyId: 'switchyard.key_id',
} as const;

/**
 * `gen_ai.provider.name` for an adapter type: the conventions' well-known
 * values where one exists, else the adapter type itself (as they allow).
 */
const PROVIDER_NAMES: Readonly<Record<string, string>> = {
  openai: 'openai',
  anthropic: 'anthropic',
  gemini: 'gcp.gemini',
  azure: 'azure.ai.openai',
  groq: 'groq',
  mistral: 'mistral_ai',
  deepseek: 'deepseek',
};

export function genAiProviderName(adapterType: string): string {
  return PROVIDER_NAMES[adapterType] ?? adapterType;
}

/** `gen_ai.operation.name` of a model route. */
export function genAiOperation(route: string): string {
  return route === '/v1/embeddings' ? 'embeddings' : 'chat';
}
