/**
 * One model request's dealings with the response cache: whether it may use
 * the cache at all (the model's `cache` settings, the request's headers), its
 * key and scope, the lookup (and the wait for an identical request already in
 * flight, in this process or, through a short Redis lock, on another
 * instance), and storing its answer or giving up on it.
 *
 * A request that looked up and missed leads the computation of its key until
 * it calls `store` or `abandon`; routes call one of them on every path, or
 * identical requests would wait for it until their own end (or the lock's).
 */
import type { CacheStatus } from '../store/schema.ts';
import { type CacheApi, type CacheScopeSetting, cacheKeyOfText, cacheScope } from './cache-key.ts';
import { cacheDirectives, cacheTtlMs } from './cache-policy.ts';
import type { CacheEntry, CacheKey } from './cache-store.ts';
import type { Flight, ResponseCache, SharedLease } from './response-cache.ts';
import type { Embedder } from './semantic/embedder.ts';
import type { EmbeddedPrompt, SemanticCache } from './semantic/semantic-cache.ts';
import { type SemanticPrompt, type SemanticSettings, semanticPrompt } from './semantic/semantic-prompt.ts';

/**
 * How long one instance holds a key's shared lock while it computes the
 * answer; identical requests on other instances wait at most this long, then
 * compute themselves. Most answers come well within it; a longer one lets the
 * lock lapse, and the worst case is a second computation, never a wrong answer.
 */
const SHARED_LOCK_MS = 30_000;
/** How often a waiting instance reads the shared tier for the holder's answer. */
const SHARED_POLL_MS = 50;

export interface ModelCacheSettings {
  enabled: boolean;
  ttl_s: number;
  scope: CacheScopeSetting;
  semantic?: SemanticSettings | undefined;
}

export interface RequestCacheInput {
  api: CacheApi;
  /** The request body as the client sent it (validated). */
  body: object;
  /** The text it was parsed from, when the route has it: a repeated request's key is remembered by it. */
  bodyText?: string | undefined;
  /** The model name the client asked for. */
  model: string;
  settings: ModelCacheSettings;
  key: { id: string; isMaster: boolean; teamId?: string | null };
  headers: Record<string, string | string[] | undefined>;
  /** The semantic tier and the model's embedder, when the model has `semantic.enabled`. */
  semantic?: { cache: SemanticCache; embedder: Embedder } | undefined;
}

export class RequestCache {
  /** A request that does not use the cache: stateless, so one instance serves them all. */
  static readonly BYPASS: RequestCache = new RequestCache(undefined, {
    api: 'chat',
    body: {},
    model: '',
    settings: { enabled: false, ttl_s: 1, scope: 'key' },
    key: { id: '', isMaster: false },
    headers: {},
  });

  readonly #cache: ResponseCache | undefined;
  readonly #key: CacheKey | undefined;
  readonly #lookup: boolean;
  readonly #store: boolean;
  readonly #ttlS: number | undefined;
  readonly #modelTtlS: number;
  #flight: Flight | undefined;
  #lease: SharedLease | undefined;
  readonly #semantic: { cache: SemanticCache; embedder: Embedder; threshold: number } | undefined;
  readonly #prompt: SemanticPrompt | undefined;
  /** `lookupNow` found process memory empty in this turn: `lookup` does not ask it again. */
  #memoryMissed = false;
  /** The prompt's vector once embedded (by the lookup), for `store` to remember it by. */
  #embedded: Promise<EmbeddedPrompt | undefined> | undefined;
  /** What the ledger row and the `x-switchyard-cache` header say. */
  status: CacheStatus = 'bypass';

  /** @throws GatewayError (400) for a malformed cache header. */
  constructor(cache: ResponseCache | undefined, input: RequestCacheInput) {
    const on = cache !== undefined && input.settings.enabled;
    // Off for this model: its cache headers are not even read.
    const directives = on ? cacheDirectives(input.headers) : undefined;
    this.#cache = on ? cache : undefined;
    this.#lookup = directives?.lookup ?? false;
    this.#store = directives?.store ?? false;
    this.#ttlS = directives?.ttlS;
    this.#modelTtlS = input.settings.ttl_s;
    const scope = cacheScope(input.settings.scope, input.key);
    this.#key =
      this.#lookup || this.#store
        ? cacheKeyOfText(input.api, input.body, input.model, scope, input.bodyText)
        : undefined;
    const semantic = input.settings.semantic;
    this.#prompt =
      this.#key !== undefined && input.semantic !== undefined && semantic?.enabled
        ? semanticPrompt(input.api, input.body, input.model, scope, semantic)
        : undefined;
    this.#semantic =
      this.#prompt !== undefined && input.semantic !== undefined && semantic !== undefined
        ? { ...input.semantic, threshold: semantic.threshold }
        : undefined;
  }

  /** False when the request bypasses the cache (model not cached, `no-store`): no lookup to await. */
  get active(): boolean {
    return this.#key !== undefined;
  }

  /**
   * The answer if process memory holds it, synchronously (the common hit:
   * nothing to wait for, so the route answers before any dispatch set-up);
   * undefined otherwise, and `lookup` (called in the same turn, with no wait
   * between) does the rest without asking memory again.
   */
  lookupNow(): CacheEntry | undefined {
    const cache = this.#cache;
    const key = this.#key;
    if (cache === undefined || key === undefined || !this.#lookup) return undefined;
    const hit = cache.lookupMemory(key);
    if (hit === undefined) {
      this.#memoryMissed = true;
      return undefined;
    }
    this.status = 'hit';
    return hit.entry;
  }

  /**
   * A cached answer, or one an identical request in flight is producing (a
   * wait that ends with this request's `signal`); undefined on a miss, which
   * makes this request the one the others wait for.
   */
  async lookup(signal: AbortSignal): Promise<CacheEntry | undefined> {
    const cache = this.#cache;
    const key = this.#key;
    if (cache === undefined || key === undefined) return undefined;
    if (!this.#lookup) {
      // Refresh (no-cache): asked upstream, stored for the next request.
      this.status = 'miss';
      this.#flight = cache.lead(key);
      return undefined;
    }
    // The common hit first: in process memory, no flight to lead or join (unless `lookupNow` just looked).
    if (!this.#memoryMissed) {
      const inMemory = cache.lookupMemory(key);
      if (inMemory !== undefined) {
        this.status = 'hit';
        return inMemory.entry;
      }
    }
    const running = cache.join(key);
    if (running !== undefined) {
      const entry = await untilAborted(running, signal);
      if (entry !== undefined) {
        this.status = 'hit';
        return entry;
      }
    }
    // Lead before the (possibly remote) lookup, so identical requests arriving meanwhile wait for this one.
    const flight = running === undefined ? cache.lead(key) : undefined;
    // Memory was asked just above, with no wait since, unless an identical request was awaited.
    const hit = await cache.lookup(key, { memoryMissed: running === undefined });
    if (hit !== undefined) {
      flight?.settle(hit.entry);
      this.status = 'hit';
      return hit.entry;
    }
    const near = await this.#lookupSemantic(cache, signal);
    if (near !== undefined) {
      flight?.settle(near);
      this.status = 'semantic-hit';
      return near;
    }
    if (flight !== undefined && this.#store) {
      // The first here: is another instance computing the same answer?
      const lease = await cache.lockShared(key, SHARED_LOCK_MS);
      if (lease === 'held') {
        const entry = await cache.waitShared(key, signal, {
          maxWaitMs: SHARED_LOCK_MS,
          pollMs: SHARED_POLL_MS,
        });
        if (entry !== undefined) {
          flight.settle(entry);
          this.status = 'hit';
          return entry;
        }
      } else {
        this.#lease = lease;
      }
    }
    this.#flight = flight;
    this.status = this.#store ? 'miss' : 'bypass';
    return undefined;
  }

  /**
   * Stores the answer when the request may, and hands it to the requests
   * waiting for it. It is serialized here, only then (a request that bypasses
   * the cache pays nothing for it), unless `text`, its JSON as the client got
   * it, is given.
   */
  store(
    answer: object,
    usage: { prompt_tokens?: number; completion_tokens?: number } | undefined,
    costMicros?: number | null,
    text?: string,
  ): void {
    const cache = this.#cache;
    const key = this.#key;
    if (cache === undefined || key === undefined || !this.#store) {
      this.abandon();
      return;
    }
    const body = text ?? JSON.stringify(answer);
    const now = cache.clock();
    const completionTokens = usage?.completion_tokens ?? 0;
    const entry: CacheEntry = {
      body,
      model: key.model,
      scope: key.scope,
      storedAt: now,
      expiresAt: now + cacheTtlMs(this.#modelTtlS, this.#ttlS, completionTokens),
      promptTokens: usage?.prompt_tokens ?? 0,
      completionTokens,
      ...(costMicros === null || costMicros === undefined ? {} : { costMicros }),
    };
    // The lease is given back once the entry is in every tier, so a waiter that sees the lock gone finds the answer.
    const lease = this.#lease;
    this.#lease = undefined;
    void cache.store(key, entry).finally(() => lease?.release());
    this.#flight?.settle(entry);
    this.#flight = undefined;
    this.#rememberPrompt(key, entry.expiresAt);
  }

  /** On an exact miss: the answer of the nearest earlier prompt in this request's partition, if near enough. */
  async #lookupSemantic(cache: ResponseCache, signal: AbortSignal): Promise<CacheEntry | undefined> {
    const semantic = this.#semantic;
    if (semantic === undefined || this.#prompt === undefined) return undefined;
    this.#embedded = semantic.cache.embed(semantic.embedder, this.#prompt, signal);
    const query = await this.#embedded;
    if (query === undefined) return undefined;
    const near = semantic.cache.nearest(query, semantic.threshold);
    if (near === undefined) return undefined;
    const answer = await cache.lookup(near.prompt.key);
    if (answer === undefined) {
      // Its answer expired or was evicted or invalidated: the pointer goes too.
      semantic.cache.forget(near.prompt.key);
      return undefined;
    }
    return answer.entry;
  }

  /** A stored answer is found by its prompt's meaning too (embedded now if the lookup did not). */
  #rememberPrompt(key: CacheKey, expiresAt: number): void {
    const semantic = this.#semantic;
    const prompt = this.#prompt;
    if (semantic === undefined || prompt === undefined) return;
    const embedded = this.#embedded ?? semantic.cache.embed(semantic.embedder, prompt);
    void embedded.then((query) => {
      if (query !== undefined) semantic.cache.remember(query, key, expiresAt);
    });
  }

  /** No answer to store (failed, refused, truncated, client gone): waiters go upstream themselves. */
  abandon(): void {
    this.#lease?.release();
    this.#lease = undefined;
    this.#flight?.settle(undefined);
    this.#flight = undefined;
  }
}

function untilAborted<T>(promise: Promise<T | undefined>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      () => resolve(undefined),
    );
  });
}
