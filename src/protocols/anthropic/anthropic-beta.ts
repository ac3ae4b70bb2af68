/**
 * `anthropic-beta`: the comma-separated beta feature names an Anthropic client
 * opts into (`files-api-2025-04-14`, ...). A client's betas are forwarded to
 * Anthropic targets, merged after the provider's configured ones, so beta
 * features work through the gateway.
 *
 * `anthropic-version` is deliberately not forwarded: the provider's configured
 * version is authoritative. The gateway reads what comes back (usage, stream
 * events, error bodies) and translates it for fallbacks to other providers;
 * a version the operator did not configure could change those shapes under
 * it, and one client could change the API a shared provider speaks.
 */

export const ANTHROPIC_BETA = 'anthropic-beta';

/** Node joins repeated headers of unknown names with ', '; an array is accepted all the same. */
type HeaderValue = string | readonly string[] | undefined;

/** The beta names in header values, trimmed, each once, in order of first appearance. */
export function betaNames(...values: HeaderValue[]): string[] {
  const names = new Set<string>();
  for (const value of values) {
    if (value === undefined) continue;
    for (const line of typeof value === 'string' ? [value] : value) {
      for (const part of line.split(',')) {
        const name = part.trim();
        if (name !== '') names.add(name);
      }
    }
  }
  return [...names];
}

/** The headers of a client's request that go to an Anthropic target; undefined when none. */
export function forwardedAnthropicHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> | undefined {
  const betas = betaNames(headers[ANTHROPIC_BETA]);
  return betas.length === 0 ? undefined : { [ANTHROPIC_BETA]: betas.join(',') };
}
