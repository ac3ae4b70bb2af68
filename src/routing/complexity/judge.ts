/**
 * A classifier that asks a model: a configured cheap chat model rates each
 * request small, medium or large (judge-prompt.ts). The call is I/O, so it
 * happens in `prepare`, which the server awaits before the routing decision
 * (Router.prepare); `classify` then answers from what `prepare` learned for
 * that very request object.
 *
 * - **Cached by prompt hash**, per key: an in-process LRU (bounded in
 *   entries, with a TTL) from hash(key, judge prompt) to tier, and one call
 *   in flight per entry (identical concurrent prompts wait for the same
 *   answer). Per key, not global, because what the cache reveals is not the
 *   tier (a prompt's difficulty is no secret) but that the prompt was seen:
 *   a shared entry would let one key learn, from a faster answer or a judge
 *   row missing from its own bill, that another key sent that exact prompt.
 *   The cache holds hashes and tiers, never the prompt.
 * - **Falls back to the heuristic** when the judge is late (`timeoutMs`,
 *   covering its retries), fails, or answers anything but one of the three
 *   words: the verdict is the heuristic's, with its confidence, reported as
 *   `judge->heuristic` (in headers and the log line, with why).
 * - **Confidence** 0.9 for a parsed answer, with the next tier up as the
 *   alternative: a policy with `min_confidence` above 0.9 sends every judged
 *   request one tier up, as the safety valve does for any unsure verdict.
 *
 * Who pays is the `ask` function's business (the gateway bills the calling
 * key: src/server/complexity-judge.ts); it reports the cost for the log.
 */
import type { ChatRequest, EmbeddingRequest } from '../../core/types.ts';
import { TtlLru } from '../../util/ttl-lru.ts';
import type { RouteCaller } from '../conditions.ts';
import type { ComplexityTier } from '../model-table.ts';
import { isChatRequest } from '../request-features.ts';
import type {
  ClassifierPreparation,
  ComplexityClassifier,
  ComplexityThresholds,
  ComplexityVerdict,
} from './classifier.ts';
import { heuristicClassifier } from './heuristic-classifier.ts';
import { judgePromptHash, judgeRequestFor, parseJudgeAnswer } from './judge-prompt.ts';

/** What the judge model said, and what asking it cost (micro-dollars; null when its price is unknown). */
export interface JudgeAnswer {
  text: string;
  costMicros: number | null;
}

/**
 * Sends the judge prompt to the judge model for `caller`. `signal` aborts
 * at the judge's timeout; a rejection is a failed judgement (the heuristic
 * decides).
 */
export type JudgeAsk = (
  judgeRequest: ChatRequest,
  context: { caller: RouteCaller; signal: AbortSignal },
) => Promise<JudgeAnswer>;

export interface JudgeOptions {
  ask: JudgeAsk;
  /** How long a judgement may take, retries included; then the fallback decides. */
  timeoutMs: number;
  /** Judged prompts remembered (default 10,000). */
  cacheEntries?: number;
  /** How long a judged prompt's tier is remembered (default one hour). */
  cacheTtlMs?: number;
  /** Decides when the judge cannot (default: the built-in heuristic). */
  fallback?: ComplexityClassifier;
  /** Clock of the cache's TTL (tests). */
  now?: () => number;
}

/** How a request's judgement went: in the log line as `judge`. */
export type JudgeOutcome = 'asked' | 'cached' | 'timeout' | 'invalid' | 'failed' | 'not-asked';

interface Judgement {
  tier: ComplexityTier | undefined;
  outcome: JudgeOutcome;
  /** The wait this request had for its verdict. */
  ms: number;
  /** What this request's judge call cost (absent when it made none). */
  costMicros?: number | null;
}

interface Asked {
  tier: ComplexityTier | undefined;
  outcome: 'asked' | 'timeout' | 'invalid' | 'failed';
  costMicros: number | null | undefined;
}

const JUDGED_CONFIDENCE = 0.9;
const NEXT_UP: Record<ComplexityTier, ComplexityTier | undefined> = {
  small: 'medium',
  medium: 'large',
  large: undefined,
};

export class JudgeClassifier implements ComplexityClassifier {
  readonly name = 'judge';
  readonly #ask: JudgeAsk;
  readonly #timeoutMs: number;
  readonly #fallback: ComplexityClassifier;
  readonly #cache: TtlLru<ComplexityTier>;
  readonly #inFlight = new Map<string, Promise<Asked>>();
  /** This request object's judgement, from `prepare` to `classify` (gone with the request). */
  readonly #judged = new WeakMap<object, Judgement>();

  constructor(options: JudgeOptions) {
    this.#ask = options.ask;
    this.#timeoutMs = options.timeoutMs;
    this.#fallback = options.fallback ?? heuristicClassifier;
    this.#cache = new TtlLru({
      maxEntries: options.cacheEntries ?? 10_000,
      ttlMs: options.cacheTtlMs ?? 3_600_000,
      ...(options.now ? { now: options.now } : {}),
    });
  }

  /** Judged prompts remembered now (all keys). */
  get cached(): number {
    return this.#cache.size;
  }

  async prepare(request: ChatRequest | EmbeddingRequest, context: ClassifierPreparation): Promise<void> {
    // Embeddings have no task to rate: the fallback decides (`judge->heuristic`, not-asked).
    if (!isChatRequest(request)) return;
    const started = performance.now();
    const judgeRequest = judgeRequestFor(request);
    const key = `${scopeOf(context.caller)}\0${judgePromptHash(judgeRequest)}`;
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      this.#judged.set(request, { tier: cached, outcome: 'cached', ms: performance.now() - started });
      return;
    }
    let pending = this.#inFlight.get(key);
    const waitsForAnother = pending !== undefined;
    if (pending === undefined) {
      pending = this.#judge(key, judgeRequest, context.caller);
      this.#inFlight.set(key, pending);
      void pending.finally(() => this.#inFlight.delete(key));
    }
    // The client leaving stops the wait, not the judgement (its answer is still worth caching).
    const asked = await untilAborted(pending, context.signal);
    const ms = performance.now() - started;
    if (waitsForAnother) {
      this.#judged.set(request, { tier: asked.tier, outcome: asked.tier ? 'cached' : asked.outcome, ms });
    } else {
      this.#judged.set(request, {
        tier: asked.tier,
        outcome: asked.outcome,
        ms,
        costMicros: asked.costMicros,
      });
    }
  }

  classify(request: ChatRequest | EmbeddingRequest, thresholds: ComplexityThresholds): ComplexityVerdict {
    const judged = this.#judged.get(request);
    if (judged?.tier !== undefined) {
      return {
        tier: judged.tier,
        score: bandMiddle(judged.tier, thresholds),
        confidence: JUDGED_CONFIDENCE,
        alternative: NEXT_UP[judged.tier],
        log: logOf(judged),
      };
    }
    const fallback = this.#fallback.classify(request, thresholds);
    return {
      ...fallback,
      by: `${this.name}->${fallback.by ?? this.#fallback.name}`,
      log: { ...fallback.log, ...logOf(judged ?? { tier: undefined, outcome: 'not-asked', ms: 0 }) },
    };
  }

  async #judge(key: string, judgeRequest: ChatRequest, caller: RouteCaller): Promise<Asked> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    let answer: JudgeAnswer;
    try {
      // Raced, so a judge that ignores its signal still cannot hold the request past the timeout.
      answer = await untilAborted(this.#ask(judgeRequest, { caller, signal }), signal);
    } catch {
      return { tier: undefined, outcome: signal.aborted ? 'timeout' : 'failed', costMicros: undefined };
    }
    const tier = parseJudgeAnswer(answer.text);
    if (tier === undefined) return { tier, outcome: 'invalid', costMicros: answer.costMicros };
    this.#cache.set(key, tier);
    return { tier, outcome: 'asked', costMicros: answer.costMicros };
  }
}

/** Whose cache entries these are: the key (the master key has its own). */
function scopeOf(caller: RouteCaller): string {
  return caller.key.isMaster ? 'master' : `key:${caller.key.id}`;
}

/** A judged tier on the heuristic's 0–10 scale: the middle of its band. */
function bandMiddle(tier: ComplexityTier, thresholds: ComplexityThresholds): number {
  const middle =
    tier === 'small'
      ? thresholds.smallMax / 2
      : tier === 'medium'
        ? (thresholds.smallMax + thresholds.mediumMax) / 2
        : (thresholds.mediumMax + 10) / 2;
  return Math.round(middle * 10) / 10;
}

function logOf(judged: Judgement): Record<string, unknown> {
  const log: Record<string, unknown> = { judge: judged.outcome, judge_ms: Math.round(judged.ms * 10) / 10 };
  if (judged.costMicros !== undefined) {
    log['judge_cost_usd'] = judged.costMicros === null ? null : judged.costMicros / 1_000_000;
  }
  return log;
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
