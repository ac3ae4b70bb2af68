/**
 * Rate-limit windows in Redis: every instance counts in the same windows, so
 * a limit of 1,000 a minute admits 1,000 across the fleet, not 1,000 per
 * instance. One script call per decision (src/store/lua/rate-window-consume-1.lua),
 * on Redis's clock.
 */
import { assertRedisReady, type RedisConnection } from '../store/redis.ts';
import type { RedisKeys } from '../store/redis-keys.ts';
import { defineScript, type ScriptCall } from '../store/redis-scripts.ts';
import type { WindowRule } from './limit-rules.ts';
import {
  bucketField,
  type RateLimitStore,
  type RuleState,
  WINDOW_BUCKETS,
  type WindowCharge,
  type WindowDecision,
} from './rate-limit-store.ts';

export class RedisRateLimitStore implements RateLimitStore {
  readonly #redis: RedisConnection;
  readonly #keys: RedisKeys;
  readonly #consume: ScriptCall;
  readonly #adjust: ScriptCall;

  constructor(redis: RedisConnection, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
    this.#consume = defineScript(redis, 'rate-window-consume-1');
    this.#adjust = defineScript(redis, 'rate-window-adjust-1');
  }

  async consume(subject: string, charges: readonly WindowCharge[]): Promise<WindowDecision> {
    assertRedisReady(this.#redis);
    const lines = charges.map((c) => `${c.rule.id} ${c.rule.windowMs} ${c.rule.limit} ${c.cost}`).join('\n');
    const reply = (await this.#consume(
      [this.#keys.rateWindows(subject)],
      [WINDOW_BUCKETS, lines],
    )) as number[];
    const rules: RuleState[] = charges.map((charge, i) => ({
      rule: charge.rule,
      used: Number(reply[2 + i * 3]),
      resetAt: Number(reply[3 + i * 3]),
      retryAt: Number(reply[4 + i * 3]),
    }));
    return { admitted: reply[0] === 1, now: Number(reply[1]), rules };
  }

  async adjust(subject: string, rule: WindowRule, at: number, delta: number): Promise<void> {
    if (delta === 0) return;
    await this.#adjust([this.#keys.rateWindows(subject)], [bucketField(rule, at), Math.trunc(delta)]);
  }
}
