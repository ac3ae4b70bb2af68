/**
 * Whether a target can serve a request, from its declared capabilities
 * (`context_window`, `tools`, `vision`, `json_mode`). Undeclared means
 * capable: declaring is how users opt targets out.
 */
import type { RouteTarget, TargetCapabilities } from './model-table.ts';
import { DEFAULT_EXPECTED_OUTPUT_TOKENS, type RequestFeatures } from './request-features.ts';

/** The first need this target does not meet, or undefined if it can serve the request. */
export function unmetNeed(target: RouteTarget, features: RequestFeatures): string | undefined {
  const caps = target.capabilities;
  if (features.needsTools && caps.tools === false) return 'tools';
  if (features.needsVision && caps.vision === false) return 'image input';
  if (features.needsJsonMode && caps.jsonMode === false) return 'JSON mode';
  if (caps.contextWindow !== undefined) {
    const needed = features.promptTokens + (features.maxOutputTokens ?? 0);
    if (needed > caps.contextWindow) return 'a context window this large';
  }
  return undefined;
}

export function declaresCapabilities(caps: TargetCapabilities): boolean {
  return (
    caps.contextWindow !== undefined ||
    caps.tools !== undefined ||
    caps.vision !== undefined ||
    caps.jsonMode !== undefined
  );
}

/** Output tokens to price a request at: what the client allows, else a typical answer. */
export function expectedOutputTokens(features: RequestFeatures): number {
  return features.maxOutputTokens ?? DEFAULT_EXPECTED_OUTPUT_TOKENS;
}
