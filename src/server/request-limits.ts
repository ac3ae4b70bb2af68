/**
 * The limits of a model request, checked before anything else is done for
 * it, for each subject it answers to (its key; the key's team, when it has
 * one; the end user of each, when the request names one and they have
 * `per_user` limits; all traffic, and all traffic to its model, when config
 * `limits` says so), in this order:
 *
 * 1. `max_concurrent`: a slot held from admission until the response is done
 *    (or the client gone); taken first, so a request refused for it is not
 *    counted by anything else;
 * 2. rate limits, the key's own over its tier's (config `tiers`): requests,
 *    and tokens charged as estimated (prompt plus the output it allows) then
 *    corrected to the real usage when the response is done, streams included;
 *    the limit headers on every response of a limited key; 429
 *    `rate_limit_exceeded` with `Retry-After` when over;
 * 3. the key's budget: the request's estimated cost (its dearest target's
 *    prices) reserved in every window, settled to the real cost when it ends;
 *    402 `budget_exceeded` when a window has no room.
 *
 * A refusal is in the route's own error shape and happens before any
 * upstream call; whatever the other subjects had taken for the request is
 * given back.
 *
 * With every store in this process (no Redis) a request is admitted in the
 * tick, with no promise to await: the async path's promise chain cost ~4 µs
 * of CPU a request with all four kinds of limit on (interleaved A/B).
 */
import type { AuthenticatedKey, Team } from '../auth/key-store.ts';
import type { AttemptPricer } from '../billing/attempt-pricer.ts';
import type { BudgetConfig } from '../config/limits-schema.ts';
import type { Config } from '../config/schema.ts';
import { GatewayError } from '../core/errors.ts';
import type { BudgetGuard, BudgetReservation } from '../limits/budget-guard.ts';
import type { ConcurrencySlot, ConcurrencyStore } from '../limits/concurrency-store.ts';
import { type Limits, mergeLimits } from '../limits/limit-rules.ts';
import type { RateLimitDecision, RateLimiter } from '../limits/rate-limiter.ts';
import { endWhenSettled, failAndEnd } from '../observability/tracing.ts';
import type { ModelRoute } from '../routing/model-table.ts';
import { once } from '../util/once.ts';
import type { GatewayReply, GatewayRequest } from './exchange.ts';
import { setRateLimitHeaders } from './rate-limit-headers.ts';

/** What a request is expected to use: its prompt, and the most output it allows (0: it sets no cap). */
export interface TokenEstimate {
  prompt: number;
  output: number;
}

/** Output reserved against a budget for a request that sets no cap of its own. */
export const UNCAPPED_OUTPUT_ESTIMATE = 1_024;

export interface RequestLimitsParts {
  tiers: Config['tiers'];
  /** Config `limits`: on all traffic (`gateway`) and per model. */
  traffic?: Config['limits'] | undefined;
  limiter: RateLimiter;
  slots: ConcurrencyStore;
  budgets: BudgetGuard;
  pricer: AttemptPricer;
  onStoreError: (error: unknown) => void;
  /** `server.end_user_header`: a header naming the request's end user, over the body's field. */
  endUserHeader?: string | undefined;
}

/** What one subject (a key, its team, one of their end users) is held to. */
interface SubjectLimits {
  subject: string;
  limits: Limits;
  budget: BudgetConfig | null;
  /** What each end user of this key or team is held to on their own (`per_user`), if anything. */
  perUser?: Limits | undefined;
}

const NO_SUBJECTS: readonly SubjectLimits[] = [];

/** The longest end-user id counted (longer ones are cut): ids name Redis keys. */
const MAX_END_USER_LENGTH = 256;

export class RequestLimits {
  readonly #parts: RequestLimitsParts;
  readonly #teams: (id: string) => Team | undefined;
  /** Per key or team object (a changed one is a new object); null when nothing limits it. */
  readonly #bySubject = new WeakMap<AuthenticatedKey | Team, SubjectLimits | null>();

  /** Config limits any traffic at all (else the master key's requests do no limit work). */
  readonly #limitsTraffic: boolean;
  /** Every store is in this process: a request is admitted in the tick, with nothing to await. */
  readonly #inProcess: boolean;

  constructor(parts: RequestLimitsParts, teams: (id: string) => Team | undefined) {
    this.#parts = parts;
    this.#teams = teams;
    this.#limitsTraffic =
      parts.traffic !== undefined &&
      (parts.traffic.gateway !== undefined || Object.keys(parts.traffic.models).length > 0);
    this.#inProcess =
      parts.limiter.inProcess && parts.slots.acquireNow !== undefined && parts.budgets.inProcess;
  }

  /**
   * What the request's key, the key's team, and the end user of each (when the
   * request names one and they have `per_user` limits) are held to; empty when
   * nothing limits it.
   */
  subjectsOf(key: AuthenticatedKey, endUser: string | undefined): SubjectLimits[] {
    const subjects: SubjectLimits[] = [];
    const own = this.#limitsOf(key, `key:${key.id}`, key.isMaster ? null : key.tier, key.limits, key.budget);
    const team = key.teamId === null ? undefined : this.#teams(key.teamId);
    const shared = team && this.#limitsOf(team, `team:${team.id}`, team.tier, team.limits, team.budget);
    for (const owner of [own, shared]) {
      if (owner === null || owner === undefined) continue;
      subjects.push(owner);
      if (owner.perUser !== undefined && endUser !== undefined) {
        subjects.push({ subject: `user:${owner.subject}:${endUser}`, limits: owner.perUser, budget: null });
      }
    }
    return subjects;
  }

  /** The end user a request names: the configured header, else the body's own field; undefined when none. */
  endUserOf(request: GatewayRequest, bodyUser: unknown): string | undefined {
    const header =
      this.#parts.endUserHeader === undefined ? undefined : request.headers[this.#parts.endUserHeader];
    const value = typeof header === 'string' && header !== '' ? header : bodyUser;
    return typeof value === 'string' && value !== '' ? value.slice(0, MAX_END_USER_LENGTH) : undefined;
  }

  #limitsOf(
    owner: AuthenticatedKey | Team,
    subject: string,
    tierName: string | null,
    own: Limits | null,
    budget: BudgetConfig | null,
  ): SubjectLimits | null {
    let found = this.#bySubject.get(owner);
    if (found === undefined) {
      const tier = tierName === null ? undefined : this.#parts.tiers[tierName];
      const limits = mergeLimits(tier, own ?? undefined);
      const perUser = limits.per_user;
      const limited =
        this.#parts.limiter.rulesFor(limits).length > 0 ||
        limits.max_concurrent !== undefined ||
        perUser !== undefined ||
        (budget !== null && Object.keys(budget).length > 0);
      found = limited ? { subject, limits, budget, perUser } : null;
      this.#bySubject.set(owner, found);
    }
    return found;
  }

  /** What all traffic to `model` is held to: config `limits.gateway` and `limits.models.<model>`. */
  #trafficSubjects(model: string): readonly SubjectLimits[] {
    const traffic = this.#parts.traffic;
    if (traffic === undefined || !this.#limitsTraffic) return NO_SUBJECTS;
    const subjects: SubjectLimits[] = [];
    if (traffic.gateway !== undefined)
      subjects.push({ subject: 'gateway:all', limits: traffic.gateway, budget: null });
    const perModel = traffic.models[model];
    if (perModel !== undefined) subjects.push({ subject: `model:${model}`, limits: perModel, budget: null });
    return subjects;
  }

  /**
   * Charges the request to its key, the key's team, their end users and the
   * traffic limits of the gateway and the model; resolves when admitted
   * (headers set on the reply), throws 429 or 402 when not. Undefined at once
   * when nothing limits it, so an unlimited request awaits nothing.
   */
  admit(
    request: GatewayRequest,
    reply: GatewayReply,
    route: ModelRoute,
    estimate: () => TokenEstimate,
    bodyUser?: unknown,
  ): Promise<void> | undefined {
    const span = request.trace.child('rate limit');
    if (!span.recording) return this.#admitRequest(request, reply, route, estimate, bodyUser);
    // Traced: the span covers the decision, awaited or not, and says a refusal's code.
    try {
      return endWhenSettled(span, this.#admitRequest(request, reply, route, estimate, bodyUser));
    } catch (error) {
      failAndEnd(span, error);
      throw error;
    }
  }

  #admitRequest(
    request: GatewayRequest,
    reply: GatewayReply,
    route: ModelRoute,
    estimate: () => TokenEstimate,
    bodyUser: unknown,
  ): Promise<void> | undefined {
    const key = request.key!;
    const traffic = this.#trafficSubjects(route.name);
    if (key.isMaster && traffic.length === 0) return undefined;
    const own = key.isMaster ? [] : this.subjectsOf(key, this.endUserOf(request, bodyUser));
    const subjects = traffic.length === 0 ? own : [...own, ...traffic];
    if (subjects.length === 0) return undefined;
    const estimateOnce = once(estimate);
    if (this.#inProcess && this.#admitNow(subjects, request, reply, route, estimateOnce)) return undefined;
    return this.#admit(subjects, request, reply, route, estimateOnce);
  }

  /**
   * `#admit` in the tick, with in-process stores: true when admitted (throws
   * when refused); false, with everything taken given back, when a budget
   * window has yet to be seeded from the ledger (then `#admit` must run).
   */
  #admitNow(
    subjects: SubjectLimits[],
    request: GatewayRequest,
    reply: GatewayReply,
    route: ModelRoute,
    estimate: () => TokenEstimate,
  ): boolean {
    const { limiter, budgets, slots: store } = this.#parts;
    const taken: Taken = { slots: [], decisions: [], reservations: [] };
    try {
      for (const { subject, limits } of subjects) {
        if (limits.max_concurrent === undefined) continue;
        const slot = store.acquireNow!(subject, limits.max_concurrent).slot;
        if (slot === undefined) throw concurrencyRefusal(subject, limits.max_concurrent);
        taken.slots.push(slot);
      }
      for (const { subject, limits } of subjects) {
        const decision = limiter.admitNow(subject, limits, tokensOf(limiter, limits, estimate));
        if (decision !== undefined) keepDecision(taken, decision, subject, reply);
      }
      if (taken.decisions.length > 0) setRateLimitHeaders(reply, taken.decisions);
      for (const { subject, budget } of subjects) {
        if (budget === null) continue;
        const reservation = budgets.reserveNow(subject, budget, this.#costEstimate(route, estimate()));
        if (reservation === undefined) continue;
        if (reservation === null) {
          this.#giveBack(taken, true);
          return false;
        }
        keepReservation(taken, reservation, subject);
      }
    } catch (error) {
      this.#giveBack(taken, true);
      throw error;
    }
    this.#settleOnClose(request, reply, taken, true);
    return true;
  }

  async #admit(
    subjects: SubjectLimits[],
    request: GatewayRequest,
    reply: GatewayReply,
    route: ModelRoute,
    estimate: () => TokenEstimate,
  ): Promise<void> {
    const { limiter, budgets } = this.#parts;
    const taken: Taken = { slots: [], decisions: [], reservations: [] };
    try {
      for (const { subject, limits } of subjects) {
        if (limits.max_concurrent === undefined) continue;
        const slot = await this.#slot(subject, limits.max_concurrent);
        if (slot !== undefined) taken.slots.push(slot);
      }
      for (const { subject, limits } of subjects) {
        const decision = await limiter.admit(subject, limits, tokensOf(limiter, limits, estimate));
        if (decision !== undefined) keepDecision(taken, decision, subject, reply);
      }
      if (taken.decisions.length > 0) setRateLimitHeaders(reply, taken.decisions);
      for (const { subject, budget } of subjects) {
        if (budget === null) continue;
        const reservation = await budgets.reserve(subject, budget, this.#costEstimate(route, estimate()));
        if (reservation === undefined) continue;
        keepReservation(taken, reservation, subject);
      }
    } catch (error) {
      this.#giveBack(taken, false);
      throw error;
    }
    this.#settleOnClose(request, reply, taken, false);
  }

  /**
   * Refused somewhere (or, in the tick, sent to the async path): nothing reached
   * an upstream, so whatever was taken is given back; `inTick` with in-process stores.
   */
  #giveBack(taken: Taken, inTick: boolean): void {
    const { limiter, budgets, onStoreError } = this.#parts;
    for (const slot of taken.slots) void slot.release().catch(onStoreError);
    for (const decision of taken.decisions) {
      if (inTick) limiter.refundNow(decision);
      else void limiter.refund(decision);
    }
    for (const reservation of taken.reservations) {
      if (inTick) budgets.settleNow(reservation, 0);
      else void budgets.settle(reservation, 0);
    }
  }

  /**
   * Once the response is done (answered, streamed, failed or abandoned): the
   * slots are freed, the real usage replaces the token estimate, the real cost
   * the reservation; `inTick` with in-process stores.
   */
  #settleOnClose(request: GatewayRequest, reply: GatewayReply, taken: Taken, inTick: boolean): void {
    if (taken.slots.length === 0 && taken.reservations.length === 0 && !chargesTokens(taken.decisions))
      return;
    // Node emits 'close' once per response, finished or not: `on` needs no once-wrapper.
    reply.raw.on('close', () => this.#settle(request, taken, inTick));
  }

  #settle(request: GatewayRequest, taken: Taken, inTick: boolean): void {
    const { limiter, budgets, onStoreError } = this.#parts;
    for (const slot of taken.slots) void slot.release().catch(onStoreError);
    const usage = request.usage;
    for (const decision of taken.decisions) {
      if (decision.tokens <= 0) continue;
      const tokens = usage?.tokens ?? decision.tokens;
      if (inTick) limiter.settleNow(decision, tokens);
      else void limiter.settle(decision, tokens);
    }
    for (const reservation of taken.reservations) {
      const cost = usage?.costMicros ?? 0;
      if (inTick) budgets.settleNow(reservation, cost);
      else void budgets.settle(reservation, cost);
    }
  }

  /** The request's cost were its dearest target to answer it in full (0 when no target has a known price). */
  #costEstimate(route: ModelRoute, tokens: TokenEstimate): number {
    const usage = {
      prompt_tokens: tokens.prompt,
      completion_tokens: tokens.output > 0 ? tokens.output : UNCAPPED_OUTPUT_ESTIMATE,
      total_tokens: 0,
    };
    let dearest = 0;
    for (const target of route.targets) {
      dearest = Math.max(dearest, this.#parts.pricer.costMicros(target.model, usage) ?? 0);
    }
    return dearest;
  }

  /** A slot of the key's in-flight cap (none needed when its store is out of reach), or 429. */
  async #slot(subject: string, max: number): Promise<ConcurrencySlot | undefined> {
    let taken: Awaited<ReturnType<ConcurrencyStore['acquire']>>;
    try {
      taken = await this.#parts.slots.acquire(subject, max);
    } catch (error) {
      this.#parts.onStoreError(error);
      return undefined;
    }
    if (taken.slot !== undefined) return taken.slot;
    throw concurrencyRefusal(subject, max);
  }
}

/** What a request took on its way in, given back if a later limit refuses it. */
interface Taken {
  slots: ConcurrencySlot[];
  decisions: RateLimitDecision[];
  reservations: BudgetReservation[];
}

/** Some decision charged tokens up front (to be corrected to the real usage). */
function chargesTokens(decisions: readonly RateLimitDecision[]): boolean {
  for (const decision of decisions) if (decision.tokens > 0) return true;
  return false;
}

/** The tokens a window limit charges the request up front (none unless `limits` counts tokens). */
function tokensOf(limiter: RateLimiter, limits: Limits, estimate: () => TokenEstimate): number {
  return limiter.countsTokens(limits) ? estimate().prompt + estimate().output : 0;
}

/** Keeps an admitted window decision; a refused one sets its headers and throws 429. */
function keepDecision(taken: Taken, decision: RateLimitDecision, subject: string, reply: GatewayReply): void {
  if (!decision.admitted) {
    setRateLimitHeaders(reply, [decision]);
    throw rateRefusal(decision, subject);
  }
  taken.decisions.push(decision);
}

/** Keeps an admitted budget reservation; a refused one throws 402. */
function keepReservation(taken: Taken, reservation: BudgetReservation, subject: string): void {
  if (!reservation.admitted) throw budgetRefusal(reservation, subject);
  taken.reservations.push(reservation);
}

/**
 * A refusal by the gateway's own limits, saying whose limit (`scope`: key,
 * team, end user, gateway, model) and which (`limit`: a window rule such as
 * `requests-minute`, `concurrency`, or a budget period): the rejection metrics'
 * labels, counted where errors are rendered (app.ts).
 */
export class LimitRefusal extends GatewayError {
  readonly scope: string;
  readonly limit: string;
  constructor(
    code: 'rate_limit_exceeded' | 'budget_exceeded',
    message: string,
    subject: string,
    limit: string,
    options: { retryAfterMs?: number } = {},
  ) {
    super(code, message, options);
    const kind = subject.slice(0, subject.indexOf(':'));
    this.scope = kind === '' ? 'other' : kind;
    this.limit = limit;
  }
}

function concurrencyRefusal(subject: string, max: number): GatewayError {
  return new LimitRefusal(
    'rate_limit_exceeded',
    `Rate limit reached: the ${ownerOf(subject)}'s limit of ${max} requests in flight at once; retry when one has finished`,
    subject,
    'concurrency',
    { retryAfterMs: 1_000 },
  );
}

/** `key`, `team`, `end user`, `gateway` or `model`, as a refusal names whose limit it was. */
function ownerOf(subject: string): string {
  const kind = subject.slice(0, subject.indexOf(':'));
  return kind === 'user' ? 'end user' : kind;
}

function rateRefusal(decision: RateLimitDecision, subject: string): GatewayError {
  const state = decision.refusedBy;
  const what =
    state === undefined
      ? 'rate limit'
      : `limit of ${state.rule.limit} ${state.rule.id.replace('-', ' per ')}`;
  const never = decision.retryAfterMs === Number.POSITIVE_INFINITY;
  return new LimitRefusal(
    'rate_limit_exceeded',
    never
      ? `This request alone needs more than the ${ownerOf(subject)}'s ${what}; it can never be admitted as it is`
      : `Rate limit reached: the ${ownerOf(subject)}'s ${what}; retry after the time in Retry-After`,
    subject,
    state?.rule.id ?? 'window',
    never ? {} : { retryAfterMs: decision.retryAfterMs! },
  );
}

const PERIOD_NAMES = { day: 'daily', month: 'monthly', total: 'total' } as const;

function budgetRefusal(reservation: BudgetReservation, subject: string): GatewayError {
  const period = reservation.refusedBy!;
  const usd = (period.limitMicros / 1_000_000).toFixed(2);
  return new LimitRefusal(
    'budget_exceeded',
    `Budget exceeded: the ${ownerOf(subject)}'s ${PERIOD_NAMES[period.kind]} budget of $${usd} has no room for this request` +
      (period.kind === 'total' ? '' : ` until ${new Date(period.endMs).toISOString()}`),
    subject,
    period.kind,
  );
}
