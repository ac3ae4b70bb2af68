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
  let policy = '';
  let remaining = '';
  let requests: Tightest | undefined;
  let tokens: Tightest | undefined;
  for (const decision of decisions) {
    // Named for whose rule it is: a team's rules are `team-…`.
    const prefix = SUBJECT_PREFIX[decision.subject.slice(0, decision.subject.indexOf(':'))] ?? '';
    for (const state of decision.rules) {
      const names = namesOf(prefix, state.rule);
      const separator = policy === '' ? '' : ', ';
      policy += separator + names.policy;
      remaining += `${separator}"${names.name}";r=${left(state)};t=${Math.ceil(Math.max(0, state.resetAt - decision.now) / 1000)}`;
      if (state.rule.unit === 'requests') {
        if (requests === undefined || left(state) < left(requests.state))
          requests = { state, now: decision.now };
      } else if (tokens === undefined || left(state) < left(tokens.state))
        tokens = { state, now: decision.now };
    }
  }
  if (policy === '') return headers;
  if (requests !== undefined) setTightest(headers, REQUESTS_HEADERS, requests);
  if (tokens !== undefined) setTightest(headers, TOKENS_HEADERS, tokens);
  headers['ratelimit-policy'] = policy;
  headers['ratelimit'] = remaining;
  return headers;
}

// Whole names, not made per response: a name built per call is a new string V8 hashes again as a key.
const REQUESTS_HEADERS = [
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
] as const;
const TOKENS_HEADERS = [
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
] as const;

/** OpenAI's trio for a unit's tightest rule: its limit, what is left, when it resets. */
function setTightest(
  headers: Record<string, string>,
  [limit, remaining, reset]: readonly [string, string, string],
  tightest: Tightest,
): void {
  headers[limit] = String(tightest.state.rule.limit);
  headers[remaining] = String(left(tightest.state));
  headers[reset] = openAIDuration(tightest.state.resetAt - tightest.now);
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
