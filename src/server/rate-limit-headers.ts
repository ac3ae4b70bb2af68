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

import type { WindowRule } from '../limits/limit-rules.ts';
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

/** A rule's name in the IETF headers and its `RateLimit-Policy` item, per name prefix (made once). */
interface RuleNames {
  name: string;
  policy: string;
}
const namesByPrefix = new Map<string, WeakMap<WindowRule, RuleNames>>();

function namesOf(prefix: string, rule: WindowRule): RuleNames {
  let byRule = namesByPrefix.get(prefix);
  if (byRule === undefined) {
    byRule = new WeakMap();
    namesByPrefix.set(prefix, byRule);
  }
  let names = byRule.get(rule);
  if (names === undefined) {
    const name = `${prefix}${rule.id}`;
    names = { name, policy: `"${name}";q=${rule.limit};w=${Math.round(rule.windowMs / 1000)}` };
    byRule.set(rule, names);
  }
  return names;
}

interface Tightest {
  state: RuleState;
  now: number;
}

export function rateLimitHeaders(...decisions: RateLimitDecision[]): Record<string, string> {
  const headers: Record<string, string> = {};
  const policy: string[] = [];
  const remaining: string[] = [];
  let requests: Tightest | undefined;
  let tokens: Tightest | undefined;
  for (const decision of decisions) {
    // Named for whose rule it is: a team's rules are `team-…`.
    const prefix = SUBJECT_PREFIX[decision.subject.slice(0, decision.subject.indexOf(':'))] ?? '';
    for (const state of decision.rules) {
      const names = namesOf(prefix, state.rule);
      policy.push(names.policy);
      remaining.push(
        `"${names.name}";r=${left(state)};t=${Math.ceil(Math.max(0, state.resetAt - decision.now) / 1000)}`,
      );
      const tightest = state.rule.unit === 'requests' ? requests : tokens;
      if (tightest !== undefined && left(state) >= left(tightest.state)) continue;
      if (state.rule.unit === 'requests') requests = { state, now: decision.now };
      else tokens = { state, now: decision.now };
    }
  }
  if (policy.length === 0) return headers;
  for (const [unit, tightest] of [
    ['requests', requests],
    ['tokens', tokens],
  ] as const) {
    if (tightest === undefined) continue;
    headers[`x-ratelimit-limit-${unit}`] = String(tightest.state.rule.limit);
    headers[`x-ratelimit-remaining-${unit}`] = String(left(tightest.state));
    headers[`x-ratelimit-reset-${unit}`] = openAIDuration(tightest.state.resetAt - tightest.now);
  }
  headers['ratelimit-policy'] = policy.join(', ');
  headers['ratelimit'] = remaining.join(', ');
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
