/**
 * The headers of a rate-limit decision, on every response of a limited key:
 *
 * - OpenAI's: `x-ratelimit-limit-requests`, `-remaining-requests`,
 *   `-reset-requests` and the `-tokens` trio, for the tightest rule of each
 *   unit (the one with the least left), resets as OpenAI writes them (`20ms`,
 *   `1s`, `6m0s`);
 * - the IETF's (draft-ietf-httpapi-ratelimit-headers): `RateLimit-Policy`
 *   lists every rule (`"requests-minute";q=1000;w=60`), `RateLimit` what is
 *   left of each (`"requests-minute";r=998;t=42`, t in seconds).
 */

import type { RuleState } from '../limits/rate-limit-store.ts';
import type { RateLimitDecision } from '../limits/rate-limiter.ts';

export function rateLimitHeaders(decision: RateLimitDecision): Record<string, string> {
  const headers: Record<string, string> = {};
  if (decision.rules.length === 0) return headers;
  for (const unit of ['requests', 'tokens'] as const) {
    let tightest: RuleState | undefined;
    for (const state of decision.rules) {
      if (state.rule.unit !== unit) continue;
      if (tightest === undefined || left(state) < left(tightest)) tightest = state;
    }
    if (tightest === undefined) continue;
    headers[`x-ratelimit-limit-${unit}`] = String(tightest.rule.limit);
    headers[`x-ratelimit-remaining-${unit}`] = String(left(tightest));
    headers[`x-ratelimit-reset-${unit}`] = openAIDuration(tightest.resetAt - decision.now);
  }
  headers['ratelimit-policy'] = decision.rules
    .map((s) => `"${s.rule.id}";q=${s.rule.limit};w=${Math.round(s.rule.windowMs / 1000)}`)
    .join(', ');
  headers['ratelimit'] = decision.rules
    .map((s) => `"${s.rule.id}";r=${left(s)};t=${Math.ceil(Math.max(0, s.resetAt - decision.now) / 1000)}`)
    .join(', ');
  return headers;
}

function left(state: RuleState): number {
  return Math.max(0, state.rule.limit - state.used);
}

/** A duration as OpenAI's headers write one: `20ms` under a second, else `1s`, `6m0s`, `1h2m3s` (seconds rounded up). */
export function openAIDuration(ms: number): string {
  if (ms <= 0) return '0s';
  if (ms < 1_000) return `${Math.ceil(ms)}ms`;
  const total = Math.ceil(ms / 1_000);
  const hours = Math.floor(total / 3_600);
  const minutes = Math.floor((total % 3_600) / 60);
  const seconds = total % 60;
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}
