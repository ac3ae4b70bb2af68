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

/**
 * A rule's `RateLimit-Policy` item and the start of its `RateLimit` item, per
 * name prefix (made once).
 */
interface RuleNames {
  policy: string;
  /** `"name";r=`: what is left follows. */
  item: string;
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
    names = {
      policy: `"${name}";q=${rule.limit};w=${Math.round(rule.windowMs / 1000)}`,
      item: `"${name}";r=`,
    };
    byRule.set(rule, names);
  }
  return names;
}

/** Where the headers go: a Fastify reply. */
export interface HeaderSink {
  header(name: string, value: string): unknown;
}

/**
 * Sets the headers of these decisions on `reply`. Straight onto the reply, with
 * each rule's fixed text made once: this runs on every request of a limited key.
 */
export function setRateLimitHeaders(reply: HeaderSink, decisions: readonly RateLimitDecision[]): void {
  let policy = '';
  let remaining = '';
  // The tightest rule of each unit (the least left), and its decision's clock.
  let requests: RuleState | undefined;
  let requestsNow = 0;
  let tokens: RuleState | undefined;
  let tokensNow = 0;
  for (const decision of decisions) {
    // Named for whose rule it is: a team's rules are `team-…`.
    const prefix = SUBJECT_PREFIX[decision.subject.slice(0, decision.subject.indexOf(':'))] ?? '';
    for (const state of decision.rules) {
      const names = namesOf(prefix, state.rule);
      const separator = policy === '' ? '' : ', ';
      policy += separator + names.policy;
      remaining += `${separator}${names.item}${left(state)};t=${Math.ceil(Math.max(0, state.resetAt - decision.now) / 1000)}`;
      if (state.rule.unit === 'requests') {
        if (requests === undefined || left(state) < left(requests)) {
          requests = state;
          requestsNow = decision.now;
        }
      } else if (tokens === undefined || left(state) < left(tokens)) {
        tokens = state;
        tokensNow = decision.now;
      }
    }
  }
  if (policy === '') return;
  if (requests !== undefined) setTightest(reply, REQUESTS_HEADERS, requests, requestsNow);
  if (tokens !== undefined) setTightest(reply, TOKENS_HEADERS, tokens, tokensNow);
  reply.header('ratelimit-policy', policy);
  reply.header('ratelimit', remaining);
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
  reply: HeaderSink,
  [limit, remaining, reset]: readonly [string, string, string],
  state: RuleState,
  now: number,
): void {
  reply.header(limit, String(state.rule.limit));
  reply.header(remaining, String(left(state)));
  reply.header(reset, openAIDuration(state.resetAt - now));
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
