/**
 * When a token this process does not know may be looked up in the database.
 *
 * A key created on another instance reaches this one through Redis pub/sub a
 * moment after its creator answered; a client that uses it at once (behind a
 * load balancer, the next request lands anywhere) would get a 401. So an
 * unknown token of the virtual-key shape is looked up once by its hash, but
 * within bounds, because unknown tokens are also what an attacker sends:
 * - at most `perSecond` lookups a second for the whole process (a token
 *   bucket of that size): a flood of random tokens costs the database that
 *   many indexed reads a second and no more; past it, unknown tokens are 401
 *   without a lookup, as before;
 * - a hash found absent (or revoked) is remembered for `rememberMs`, so a
 *   client retrying a dead key does not spend the budget. A secret is random:
 *   a hash absent now is never a key created later, so remembering it cannot
 *   hide a new key (only a revoked one, which stays refused anyway).
 */

export interface UnknownTokenLookupOptions {
  /** Database lookups a second, at most. @default 20 */
  perSecond?: number;
  /** How long a hash found absent is remembered. @default 60_000 */
  rememberMs?: number;
  /** How many absent hashes are remembered, at most (the oldest go first). @default 10_000 */
  rememberCount?: number;
}

export class UnknownTokenLookups {
  readonly #perSecond: number;
  readonly #rememberMs: number;
  readonly #rememberCount: number;
  /** Absent hash → until when it is remembered (epoch ms); insertion order is age order. */
  readonly #absent = new Map<string, number>();
  #tokens: number;
  #refilledAt = 0;

  constructor(options: UnknownTokenLookupOptions = {}) {
    this.#perSecond = options.perSecond ?? 20;
    this.#rememberMs = options.rememberMs ?? 60_000;
    this.#rememberCount = options.rememberCount ?? 10_000;
    this.#tokens = this.#perSecond;
  }

  /** Whether `hash` may be looked up now (spends one lookup of the budget when it may). */
  admit(hash: string, now: number = Date.now()): boolean {
    const until = this.#absent.get(hash);
    if (until !== undefined) {
      if (until > now) return false;
      this.#absent.delete(hash);
    }
    this.#tokens = Math.min(
      this.#perSecond,
      this.#tokens + ((now - this.#refilledAt) * this.#perSecond) / 1000,
    );
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** The lookup found no live key with this hash. */
  absent(hash: string, now: number = Date.now()): void {
    this.#absent.delete(hash);
    this.#absent.set(hash, now + this.#rememberMs);
    if (this.#absent.size > this.#rememberCount) {
      const oldest = this.#absent.keys().next().value;
      if (oldest !== undefined) this.#absent.delete(oldest);
    }
  }
}
