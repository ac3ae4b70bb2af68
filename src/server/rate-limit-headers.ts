/**
 * The headers of a rate-limit decision, on every response of a limited key:
 *
 * - OpenAI's: `x-ratelimit-limit-requests`, `-remaining-requests`,
 *   `-reset-requests` and the `-tokens` trio, for the tightest rule of each
 *   unit (the one with the least left), resets as OpenAI writes them (`20ms`,
 *   `1s`, `6m0s`);
 * - the IETF's (draft-ietf-httpapi-ratelimit-headers): `RateLimit-Policy`
 *   lists every rule (`"requests-minute";q=1000;w=60`), `RateLimit` what is
 *   left of each (`"requests-minute";r=998;t=42`, t in seconds); a team's rules
 *   are named `team-requests-minute`, an end user's `user-requests-minute`.
 */

import type { RuleState } from '../limits/rate-limit-store.ts';
import type { RateLimitDecision } from '../limits/rate-limiter.ts';

/** How a rule is named by whose it is: the key's plainly, a team's `team-…`, an end user's `user-…`, the gateway's and a model's `gateway-…`, `model-…`. */
const SUBJECT_PREFIX: Record<string, string> = {
  key: '',
  team: 'team-',
  user: 'user-',
  gateway: 'gateway-',
  model: 'model-',
};

export function rateLimitHeaders(...decisions: RateLimitDecision[]): Record<string, string> {
  const headers: Record<string, string> = {};
  // Each rule with its decision's clock, and named for whose it is: a team's rules are `team-…`.
  const states = decisions.flatMap((decision) =>
    decision.rules.map((state) => ({
      state,
      now: decision.now,
      name: `${SUBJECT_PREFIX[decision.subject.slice(0, decision.subject.indexOf(':'))] ?? ''}${state.rule.id}`,
    })),
  );
  if (states.length === 0) return headers;
  for (const unit of ['requests', 'tokens'] as const) {
    let tightest: (typeof states)[number] | undefined;
    for (const entry of states) {
      if (entry.state.rule.unit !== unit) continue;
      if (tightest === undefined || left(entry.state) < left(tightest.state)) tightest = entry;
    }
    if (tightest === undefined) continue;
    headers[`x-ratelimit-limit-${unit}`] = String(tightest.state.rule.limit);
    headers[`x-ratelimit-remaining-${unit}`] = String(left(tightest.state));
    headers[`x-ratelimit-reset-${unit}`] = openAIDuration(tightest.state.resetAt - tightest.now);
  }
  headers['ratelimit-policy'] = states
    .map(({ state, name }) => `"${name}";q=${state.rule.limit};w=${Math.round(state.rule.windowMs / 1000)}`)
    .join(', ');
  headers['ratelimit'] = states
    .map(
      ({ state, now, name }) =>
        `"${name}";r=${left(state)};t=${Math.ceil(Math.max(0, state.resetAt - now) / 1000)}`,
    )
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
