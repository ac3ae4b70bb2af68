/**
 * `anthropic-beta`: the comma-separated beta feature names an Anthropic client
 * opts into (`files-api-2025-04-14`, ...). A client's betas are forwarded to
 * Anthropic targets, where the adapter merges them after the provider's
 * configured ones (src/providers/anthropic/), so beta features work through
 * the gateway.
 *
 * `anthropic-version` is deliberately not forwarded: the provider's configured
 * version is authoritative. The gateway reads what comes back (usage, stream
 * events, error bodies) and translates it for fallbacks to other providers;
 * a version the operator did not configure could change those shapes under
 * it, and one client could change the API a shared provider speaks.
 */
import { ANTHROPIC_BETA, betaNames } from '../../providers/anthropic/index.ts';

/** The headers of a client's request that go to an Anthropic target; undefined when none. */
export function forwardedAnthropicHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> | undefined {
  const betas = betaNames(headers[ANTHROPIC_BETA]);
  return betas.length === 0 ? undefined : { [ANTHROPIC_BETA]: betas.join(',') };
}
