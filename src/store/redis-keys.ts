/**
 * Every Redis key and pub/sub channel name Switchyard uses, built in one
 * place from one prefix (`storage.redis_prefix`, default `switchyard:`; the
 * rule in src/config/redis-prefix.ts).
 *
 * Two deployments that share one Redis (staging and production, two tenants)
 * stay apart by giving each its own prefix: nothing either writes, reads,
 * publishes or subscribes to carries the other's prefix. Pub/sub channels are
 * not keys (not even scoped by database number), so they are prefixed here
 * too. A prefix must not begin with another deployment's prefix followed by
 * one of the names below (`a:` and `a:breaker:`), or their names could meet.
 *
 * With the default prefix the names are those earlier versions used, so a
 * fleet upgraded one instance at a time keeps sharing breakers and key changes.
 *
 * Add a name here (never a template string at the call site) for each new
 * piece of shared state: the cache, rate limiter and budget stores included.
 */
import { DEFAULT_REDIS_PREFIX, isValidRedisPrefix, REDIS_PREFIX_RULE } from '../config/redis-prefix.ts';

export interface RedisKeysOptions {
  /**
   * Redis Cluster: names that one script or transaction uses together carry a
   * hash tag (`{...}`) so they hash to one slot (a budget subject's windows,
   * the job queue's keys). Off elsewhere, so a single server or Sentinel
   * deployment keeps the names earlier versions used.
   * @default false
   */
  cluster?: boolean;
}

export class RedisKeys {
  readonly prefix: string;
  readonly cluster: boolean;

  /** @throws TypeError when `prefix` breaks the rule (fails at construction, never at the first command). */
  constructor(prefix: string = DEFAULT_REDIS_PREFIX, options: RedisKeysOptions = {}) {
    if (!isValidRedisPrefix(prefix)) {
      throw new TypeError(`invalid Redis prefix ${JSON.stringify(prefix)}: expected ${REDIS_PREFIX_RULE}`);
    }
    this.prefix = prefix;
    this.cluster = options.cluster ?? false;
  }

  /** Channel: a virtual key changed (revoked, edited); the message is the key id. */
  get keysChannel(): string {
    return `${this.prefix}keys`;
  }

  /** Channel: a circuit breaker changed state; the message is its shared state as JSON, with its id. */
  get breakerChannel(): string {
    return `${this.prefix}breakers`;
  }

  /** String (JSON): breaker `id`'s latest shared state. */
  breakerState(id: string): string {
    return `${this.prefix}breaker:${id}`;
  }

  /** Counter: half-open probe permits held in open period `epoch`; it expires when they lapse. */
  breakerProbes(id: string, epoch: number): string {
    return `${this.prefix}breaker:${id}:probes:${epoch}`;
  }

  /** Counter: probe successes in open period `epoch`. */
  breakerProbeSuccesses(id: string, epoch: number): string {
    return `${this.prefix}breaker:${id}:ok:${epoch}`;
  }

  /** String (JSON): a cached answer; `name` is the cache's own key string (model:scope:hash). */
  cacheEntry(name: string): string {
    return `${this.prefix}cache:${name}`;
  }

  /** String (a holder's token, with expiry): one instance is computing the answer `name` names. */
  cacheLock(name: string): string {
    return `${this.prefix}cache-lock:${name}`;
  }

  /** Channel: the response cache was invalidated; the message is the filter as JSON, with the sender's id. */
  get cacheInvalidationChannel(): string {
    return `${this.prefix}cache-invalidations`;
  }

  /** Stream: the prompts the semantic cache remembered, on any instance (vector and answer key per entry). */
  get semanticStream(): string {
    return `${this.prefix}semantic-cache`;
  }

  /** Hash: one rate-limit subject's sliding windows (`key:<id>`...), `<rule>:<bucket>` -> count admitted. */
  rateWindows(subject: string): string {
    return `${this.prefix}ratelimit:${subject}`;
  }

  /** Sorted set: one subject's in-flight slots (`max_concurrent`), lease id -> when it lapses (ms). */
  concurrencyLeases(subject: string): string {
    return `${this.prefix}concurrency:${subject}`;
  }

  /** Hash: one budget window's counter (`spent`, `reserved` micro-dollars) of one subject; `window` is e.g. `day:2026-12-01`. */
  budgetWindow(subject: string, window: string): string {
    // One script reserves in a subject's day, month and total windows at once.
    return this.cluster
      ? `${this.prefix}budget:{${subject}}:${window}`
      : `${this.prefix}budget:${subject}:${window}`;
  }

  /** String (set once, with expiry): alert `name` was sent for this budget window. */
  budgetAlert(subject: string, window: string, name: string): string {
    return `${this.prefix}budget-alert:${subject}:${window}:${name}`;
  }

  /**
   * BullMQ's `prefix` option for the job queue (src/jobs/bullmq-job-queue.ts):
   * BullMQ names its keys `<this>:<queue>:<kind>` (`switchyard:jobs:fast:wait`)
   * and the job hashes `<this>:<queue>:<job id>`. On a cluster `<prefix>{jobs}`:
   * BullMQ's scripts and ours (jobs-cancel-7.lua) touch many of these keys at
   * once, so all of them share one slot (BullMQ's own advice for clusters).
   */
  get bullmqPrefix(): string {
    return this.cluster ? `${this.prefix}{jobs}` : `${this.prefix}jobs`;
  }

  /** Hash: job id -> its queue's name, so a job is found (and an id is unique) across queues. */
  get jobIndex(): string {
    return this.cluster ? `${this.prefix}{jobs}-index` : `${this.prefix}job-index`;
  }

  /** Set: the ids of one queue's cancelled jobs (BullMQ keeps them with its failed ones), for counts. */
  jobsCancelled(queue: string): string {
    return this.cluster ? `${this.prefix}{jobs}-cancelled:${queue}` : `${this.prefix}jobs-cancelled:${queue}`;
  }

  /** `SCAN MATCH` pattern for the cached answers of one model and/or scope (encoded as in the names), or all. */
  cachePattern(model: string | undefined, scope: string | undefined): string {
    const part = (value: string | undefined) => (value === undefined ? '*' : globEscape(value));
    return `${globEscape(this.prefix)}cache:${part(model)}:${part(scope)}:*`;
  }

  /** `SCAN MATCH` pattern for every key under this prefix (operators, test cleanup). */
  get pattern(): string {
    return `${globEscape(this.prefix)}*`;
  }
}

/** `*`, `?`, `[`, `]` and `\\` are glob syntax: escaped, a name containing one matches only itself. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
