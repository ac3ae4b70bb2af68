/**
 * A LiteLLM deployment's `litellm_params.model` (`openai/gpt-4o`,
 * `azure/my-deployment`, `ollama/llama3`...) with its `api_base`, `api_key`
 * and `api_version`, as a Switchyard provider (type and fields) and the
 * upstream model id its target sends.
 *
 * LiteLLM reads a provider's key from a documented environment variable when
 * the deployment names none; the import writes that variable as `${NAME}`,
 * so the gateway reads the same one.
 */
import { envVar, isEnvReference, stringValue } from './values.ts';

export type ProviderTranslation =
  | {
      ok: true;
      /** Switchyard provider type. */
      type: string;
      /** The provider's fields besides `type` (base_url, api_key...). */
      fields: Record<string, unknown>;
      /** Upstream model id (Azure: the deployment name). */
      model: string;
      /** LiteLLM's provider prefix (or the one inferred), for naming and the report. */
      family: string;
      /** Set when the mapping is an approximation: how. */
      approximation?: string;
    }
  | { ok: false; reason: string };

interface Family {
  type: string;
  /** The variable LiteLLM reads the key from when `api_key` is absent. */
  keyEnv?: string;
  /** For OpenAI-compatible services Switchyard has no preset for. */
  defaultBaseUrl?: string;
  /** LiteLLM's api_base → Switchyard's base_url. */
  baseUrl?: (apiBase: string) => string;
  approximation?: string;
}

const stripSlash = (url: string) => url.replace(/\/+$/, '');

const FAMILIES: Record<string, Family> = {
  openai: { type: 'openai', keyEnv: 'OPENAI_API_KEY' },
  custom_openai: { type: 'openai', keyEnv: 'OPENAI_API_KEY' },
  // LiteLLM takes the full messages URL or the host; Switchyard the host, without /v1.
  anthropic: {
    type: 'anthropic',
    keyEnv: 'ANTHROPIC_API_KEY',
    baseUrl: (b) => stripSlash(b).replace(/\/v1(\/messages)?$/, ''),
  },
  gemini: {
    type: 'gemini',
    keyEnv: 'GEMINI_API_KEY',
    baseUrl: (b) => stripSlash(b).replace(/\/v1(beta)?$/, ''),
  },
  // LiteLLM speaks Ollama's native API at the host; Switchyard its OpenAI-compatible /v1.
  ollama: { type: 'ollama', baseUrl: (b) => `${stripSlash(b).replace(/\/v1$/, '')}/v1` },
  ollama_chat: { type: 'ollama', baseUrl: (b) => `${stripSlash(b).replace(/\/v1$/, '')}/v1` },
  hosted_vllm: { type: 'vllm' },
  groq: { type: 'groq', keyEnv: 'GROQ_API_KEY' },
  together_ai: { type: 'together', keyEnv: 'TOGETHERAI_API_KEY' },
  mistral: { type: 'mistral', keyEnv: 'MISTRAL_API_KEY' },
  deepseek: { type: 'deepseek', keyEnv: 'DEEPSEEK_API_KEY' },
  openrouter: { type: 'openrouter', keyEnv: 'OPENROUTER_API_KEY' },
  xai: { type: 'openai', keyEnv: 'XAI_API_KEY', defaultBaseUrl: 'https://api.x.ai/v1' },
  fireworks_ai: {
    type: 'openai',
    keyEnv: 'FIREWORKS_AI_API_KEY',
    defaultBaseUrl: 'https://api.fireworks.ai/inference/v1',
  },
  perplexity: { type: 'openai', keyEnv: 'PERPLEXITYAI_API_KEY', defaultBaseUrl: 'https://api.perplexity.ai' },
  cerebras: { type: 'openai', keyEnv: 'CEREBRAS_API_KEY', defaultBaseUrl: 'https://api.cerebras.ai/v1' },
  deepinfra: {
    type: 'openai',
    keyEnv: 'DEEPINFRA_API_KEY',
    defaultBaseUrl: 'https://api.deepinfra.com/v1/openai',
  },
  lm_studio: { type: 'openai', defaultBaseUrl: 'http://127.0.0.1:1234/v1' },
  azure_ai: {
    type: 'openai',
    keyEnv: 'AZURE_AI_API_KEY',
    approximation: "Azure AI's OpenAI-compatible endpoint, called as an openai provider at api_base",
  },
};

/** Providers with their own wire formats or auth that Switchyard does not speak. */
const UNSUPPORTED: Record<string, string> = {
  bedrock: 'AWS Bedrock (SigV4 auth)',
  bedrock_converse: 'AWS Bedrock (SigV4 auth)',
  sagemaker: 'AWS SageMaker (SigV4 auth)',
  sagemaker_chat: 'AWS SageMaker (SigV4 auth)',
  vertex_ai: 'Vertex AI (Google service-account auth)',
  vertex_ai_beta: 'Vertex AI (Google service-account auth)',
  cohere: "Cohere's native API",
  cohere_chat: "Cohere's native API",
  replicate: "Replicate's prediction API",
  huggingface: "Hugging Face's inference API",
  watsonx: 'IBM watsonx (IAM auth)',
  'text-completion-openai': 'the legacy completions API (Switchyard serves chat completions)',
  'text-completion-codestral': 'the legacy completions API (Switchyard serves chat completions)',
  vllm: 'an in-process vLLM (use hosted_vllm/ for a vLLM server)',
};

export function translateProvider(params: Record<string, unknown>): ProviderTranslation {
  const modelString = typeof params['model'] === 'string' ? params['model'].trim() : '';
  if (modelString === '') return { ok: false, reason: 'litellm_params.model is missing' };
  if (modelString.includes('*')) {
    return {
      ok: false,
      reason: `wildcard '${modelString}': Switchyard serves the models its config lists; add each model you need`,
    };
  }
  const slash = modelString.indexOf('/');
  let prefix = slash > 0 ? modelString.slice(0, slash) : '';
  let model = slash > 0 ? modelString.slice(slash + 1) : modelString;
  if (
    prefix !== '' &&
    !Object.hasOwn(FAMILIES, prefix) &&
    !Object.hasOwn(UNSUPPORTED, prefix) &&
    prefix !== 'azure'
  ) {
    // `meta-llama/Llama-3` with an api_base: a model id with a slash, not a provider prefix.
    if (params['api_base'] === undefined) {
      return { ok: false, reason: `LiteLLM provider '${prefix}' has no Switchyard equivalent` };
    }
    return openAICompatible(params, modelString, prefix);
  }
  if (prefix === '') {
    const inferred = inferFamily(model);
    if (inferred === undefined) {
      if (params['api_base'] !== undefined) return openAICompatible(params, model, 'openai');
      return {
        ok: false,
        reason: `cannot tell the provider of '${model}'; write it as <provider>/${model} (e.g. openai/${model})`,
      };
    }
    prefix = inferred;
  }
  const unsupported = UNSUPPORTED[prefix];
  if (unsupported !== undefined) return { ok: false, reason: `Switchyard does not speak ${unsupported}` };
  if (prefix === 'azure') return azure(params, model);
  const family = FAMILIES[prefix]!;
  const fields: Record<string, unknown> = {};
  const apiBase = stringValue(params['api_base']);
  if (apiBase !== undefined)
    fields['base_url'] = family.baseUrl ? family.baseUrl(apiBase) : stripSlash(apiBase);
  else if (family.defaultBaseUrl !== undefined) fields['base_url'] = family.defaultBaseUrl;
  else if (prefix === 'azure_ai') return { ok: false, reason: 'azure_ai/ needs api_base' };
  const key = stringValue(params['api_key']) ?? (family.keyEnv ? envVar(family.keyEnv) : undefined);
  if (key !== undefined) fields['api_key'] = key;
  if (family.type === 'openai' && params['organization'] !== undefined) {
    fields['organization'] = stringValue(params['organization']);
  }
  model = model.trim();
  return {
    ok: true,
    type: family.type,
    fields,
    model,
    family: prefix,
    ...(family.approximation ? { approximation: family.approximation } : {}),
  };
}

function azure(params: Record<string, unknown>, deployment: string): ProviderTranslation {
  const endpoint = stringValue(params['api_base']) ?? envVar('AZURE_API_BASE');
  const fields: Record<string, unknown> = {
    // Switchyard builds /openai/deployments/... itself: the resource URL is enough.
    endpoint: isEnvReference(params['api_base']) ? endpoint : stripSlash(endpoint).replace(/\/openai$/, ''),
    api_key: stringValue(params['api_key']) ?? envVar('AZURE_API_KEY'),
  };
  const version = stringValue(params['api_version']);
  if (version !== undefined) fields['api_version'] = version;
  return { ok: true, type: 'azure', fields, model: deployment, family: 'azure' };
}

function openAICompatible(
  params: Record<string, unknown>,
  model: string,
  family: string,
): ProviderTranslation {
  const fields: Record<string, unknown> = { base_url: stripSlash(stringValue(params['api_base'])!) };
  const key = stringValue(params['api_key']);
  if (key !== undefined) fields['api_key'] = key;
  return {
    ok: true,
    type: 'openai',
    fields,
    model,
    family,
    ...(family === 'openai'
      ? {}
      : { approximation: `LiteLLM's '${family}' provider, assumed OpenAI-compatible at api_base` }),
  };
}

/** What LiteLLM infers for a model written without a provider prefix. */
function inferFamily(model: string): string | undefined {
  if (/^(gpt-|chatgpt-|o\d|text-embedding-|omni-moderation|ft:gpt)/.test(model)) return 'openai';
  if (/^claude-/.test(model)) return 'anthropic';
  return undefined;
}
