/**
 * OpenAI-compatible servers that need nothing but a base URL: each preset is
 * the `openai` adapter with the provider's documented default endpoint. The
 * config schema and the registry both read this one table, so adding a preset
 * is one line here.
 */

export interface Preset {
  /** The provider's documented OpenAI-compatible base URL (overridable with `base_url`). */
  baseUrl: string;
  /** Hosted services reject anonymous calls; local servers usually run without a key. */
  requiresKey: boolean;
}

export const PRESETS = {
  ollama: { baseUrl: 'http://127.0.0.1:11434/v1', requiresKey: false },
  vllm: { baseUrl: 'http://127.0.0.1:8000/v1', requiresKey: false },
  groq: { baseUrl: 'https://api.groq.com/openai/v1', requiresKey: true },
  together: { baseUrl: 'https://api.together.xyz/v1', requiresKey: true },
  mistral: { baseUrl: 'https://api.mistral.ai/v1', requiresKey: true },
  deepseek: { baseUrl: 'https://api.deepseek.com/v1', requiresKey: true },
  openrouter: { baseUrl: 'https://openrouter.ai/api/v1', requiresKey: true },
} as const satisfies Record<string, Preset>;

export type PresetType = keyof typeof PRESETS;

export const PRESET_TYPES = Object.keys(PRESETS) as PresetType[];
