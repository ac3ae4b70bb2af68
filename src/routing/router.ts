/**
 * The Router decides, per request, the ordered list of upstream targets that
 * dispatch will try. Dispatch owns how they are tried (retries, breakers,
 * hedging); the Router owns which and in what order:
 *
 * 1. conditions (`routes:`) narrow the model's targets by key tier, key
 *    metadata or request headers;
 * 2. the model's strategy orders them; a nested group is replaced by its own
 *    decision (its conditions and strategy), in place;
 * 3. deactivated targets (admin) and targets whose declared capabilities
 *    cannot serve the request are removed;
 * 4. a stable re-rank moves targets that cannot take traffic now behind those
 *    that can: primaries, then secondaries, then backups; then the same order
 *    of targets above `shed_at` of their capacity; then targets the
 *    breaker reports unavailable. So a secondary leads only when no primary
 *    can take traffic, and when everything is saturated the strategy's order
 *    still stands.
 *
 * Outcomes come back through `onAttemptStart` / `onAttemptEnd` (capacity
 * accounting, latency averages). Everything is in-process: deactivation and
 * statistics are per gateway instance.
 */
import { MAX_GROUP_DEPTH } from '../config/routing-schema.ts';
import { GatewayError } from '../core/errors.ts';
import type { ChatRequest, EmbeddingRequest } from '../core/types.ts';
import type { RateLimitStore } from '../limits/rate-limit-store.ts';
import { type RandomSource, seededRandom } from '../util/random.ts';
import type { AttemptObserver, AttemptOutcome } from './attempt-observer.ts';
import { declaresCapabilities, unmetNeed } from './capabilities.ts';
import { CapacityTracker } from './capacity.ts';
import type { ComplexityClassifier } from './complexity/classifier.ts';
import { type ComplexityClassifierSource, resolveComplexityPolicy } from './complexity/policy.ts';
import type { ComplexityPolicy } from './complexity/safety-valve.ts';
import { type RouteCaller, RouteConditions } from './conditions.ts';
import { LatencyTracker } from './latency.ts';
import type { ModelRoute, RouteTarget, TargetRole } from './model-table.ts';
import { type RequestFeatures, readFeatures } from './request-features.ts';
import { STRATEGIES } from './strategies/index.ts';
import type { RoutingStrategy, StrategyContext } from './strategies/types.ts';

export type { AttemptOutcome, RouteCaller };

export interface RoutingDecision {
  /** Targets to try, in order. Never empty. */
  candidates: RouteTarget[];
  /** Response headers describing the decision (e.g. complexity score and tier). */
  headers: Record<string, string>;
  /** Fields for the request's log line, when the strategy has any. */
  log: Record<string, unknown> | undefined;
}

export interface RouterOptions {
  /** False when a target cannot take traffic now (e.g. its circuit breaker is open). */
  isAvailable?: (targetId: string) => boolean;
  /** Overrides every model's random source (tests); otherwise `seed` or Math.random. */
  random?: RandomSource;
  /** Clock for capacity accounting (tests). */
  now?: () => number;
  /** Where targets' capacity is counted fleet-wide (the Redis rate-limit store); absent: per process. */
  sharedCapacity?: RateLimitStore;
  /** Told when the shared capacity count fails (the local count goes on alone). */
  onSharedCapacityError?: (error: unknown) => void;
  /**
   * Complexity classifiers beyond the built-in `heuristic`, by the name
   * `complexity.classifier` gives (e.g. `nearest-neighbour`, which needs an
   * embedder the server supplies); a function is called once, when a model
   * first needs it.
   */
  complexityClassifiers?: Readonly<Record<string, ComplexityClassifierSource>>;
}

export interface TargetView {
  id: string;
  provider: string;
  model: string;
  role: TargetRole;
  tier: string | null;
  weight: number;
  active: boolean;
  available: boolean;
  latency_ewma_ms: number | null;
  ttft_ewma_ms: number | null;
  samples: number;
  capacity: { rpm: number | null; tpm: number | null; burst: number | null; use: number } | null;
}

export interface ModelTargetsView {
  model: string;
  strategy: string;
  targets: TargetView[];
}

interface Plan {
  route: ModelRoute;
  strategy: RoutingStrategy;
  conditions: RouteConditions;
  random: RandomSource;
  complexity: ComplexityPolicy;
  shedAt: number;
  /** Any target below declares capabilities, so requests must be checked against them. */
  checksCapabilities: boolean;
  /** Any target below may need re-ranking (a non-primary role or declared limits). */
  ranks: boolean;
  /**
   * The decision depends only on which targets are active (fallback order, no
   * conditions, groups, capabilities or re-ranking): it is made once per
   * activation change and shared by every request.
   */
  fixedOrder: boolean;
  fixed: { version: number; decision: RoutingDecision } | undefined;
  /** Complexity classifiers of this model and its groups with an async step (the judge); found once. */
  preparers: readonly ComplexityClassifier[] | undefined;
}

const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const ROLE_RANK: Record<TargetRole, number> = { primary: 0, secondary: 1, backup: 2 };
const RANKS = 9;

export class Router implements AttemptObserver {
  readonly #models: Map<string, ModelRoute>;
  readonly #plans = new Map<string, Plan>();
  readonly #inactive = new Set<string>();
  /** Bumped when a target is deactivated or activated: fixed decisions made before are stale. */
  #activationVersion = 0;
  readonly #known = new Set<string>();
  readonly #latency = new LatencyTracker();
  readonly #capacity: CapacityTracker;
  readonly #isAvailable: ((targetId: string) => boolean) | undefined;
  readonly #random: RandomSource | undefined;
  readonly #classifiers: Readonly<Record<string, ComplexityClassifierSource>>;

  constructor(models: Map<string, ModelRoute>, options: RouterOptions = {}) {
    this.#models = models;
    this.#capacity = new CapacityTracker(options.now, options.sharedCapacity, options.onSharedCapacityError);
    this.#isAvailable = options.isAvailable;
    this.#random = options.random;
    this.#classifiers = options.complexityClassifiers ?? {};
    for (const route of models.values()) this.#plan(route);
  }

  decide(route: ModelRoute, request: ChatRequest | EmbeddingRequest, who: RouteCaller): RoutingDecision {
    const plan = this.#plan(route);
    if (!plan.fixedOrder || this.#isAvailable !== undefined) return this.#decide(plan, request, who);
    const fixed = plan.fixed;
    if (fixed !== undefined && fixed.version === this.#activationVersion) return fixed.decision;
    // Shared by every request from now on: frozen, so no consumer can change another's decision.
    const decision = this.#decide(plan, request, who);
    Object.freeze(decision.candidates);
    plan.fixed = { version: this.#activationVersion, decision: Object.freeze(decision) };
    return decision;
  }

  /** True when `prepare` has work for this model: a complexity classifier of it or its groups needs I/O. */
  prepares(route: ModelRoute): boolean {
    return this.#preparers(this.#plan(route)).length > 0;
  }

  /**
   * The decision's asynchronous part: runs the `prepare` step of the
   * complexity classifiers that have one (the judge asks its model) for this
   * model and the groups it nests. Await it, then call `decide` with the same
   * request object; undefined when there is nothing to wait for. Rejects only
   * when `signal` aborts (the client left).
   */
  prepare(
    route: ModelRoute,
    request: ChatRequest | EmbeddingRequest,
    who: RouteCaller,
    signal: AbortSignal,
  ): Promise<void> | undefined {
    const preparers = this.#preparers(this.#plan(route));
    if (preparers.length === 0) return undefined;
    const context = { caller: who, signal };
    if (preparers.length === 1) return preparers[0]!.prepare!(request, context);
    return Promise.all(preparers.map((c) => c.prepare!(request, context))).then(() => undefined);
  }

  #preparers(plan: Plan): readonly ComplexityClassifier[] {
    if (plan.preparers !== undefined) return plan.preparers;
    const found = new Set<ComplexityClassifier>();
    const visit = (p: Plan, depth: number): void => {
      if (p.strategy === STRATEGIES['complexity']) {
        for (const classifier of p.complexity.classifiers) if (classifier.prepare) found.add(classifier);
      }
      for (const entry of p.route.entries) {
        const sub = entry.group === undefined ? undefined : this.#models.get(entry.group);
        if (sub !== undefined && depth + 1 <= MAX_GROUP_DEPTH) visit(this.#plan(sub), depth + 1);
      }
    };
    visit(plan, 0);
    plan.preparers = [...found];
    return plan.preparers;
  }

  #decide(plan: Plan, request: ChatRequest | EmbeddingRequest, who: RouteCaller): RoutingDecision {
    const route = plan.route;
    let features: RequestFeatures | undefined;
    const ctx: StrategyContext = {
      request,
      random: plan.random,
      latency: this.#latency,
      features: () => {
        features ??= readFeatures(request);
        return features;
      },
      complexity: plan.complexity,
      keyTier: who.key?.tier ?? null,
      headers: undefined,
      log: undefined,
    };
    const ordered: RouteTarget[] = [];
    const roles: number[] = [];
    this.#collect(plan, ctx, who, ordered, roles, 0, 0);

    // Remove what must not be tried, remembering why, for the error if nothing is left.
    let deactivated = 0;
    let unmet: string | undefined;
    let kept = 0;
    for (let i = 0; i < ordered.length; i++) {
      const target = ordered[i]!;
      if (this.#inactive.has(target.id)) {
        deactivated++;
        continue;
      }
      if (plan.checksCapabilities) {
        const need = unmetNeed(target, ctx.features());
        if (need !== undefined) {
          unmet ??= need;
          continue;
        }
      }
      ordered[kept] = target;
      roles[kept] = roles[i]!;
      kept++;
    }
    ordered.length = kept;
    roles.length = kept;
    if (kept === 0) {
      if (unmet !== undefined) {
        throw new GatewayError('invalid_request', `No target of model '${route.name}' supports ${unmet}`);
      }
      throw new GatewayError(
        'no_target_available',
        `Every target of model '${route.name}' is deactivated${deactivated > 0 ? '' : ' or excluded'}`,
      );
    }
    const candidates = plan.ranks || this.#isAvailable ? this.#rerank(ordered, roles, plan.shedAt) : ordered;
    return { candidates, headers: ctx.headers ?? NO_HEADERS, log: ctx.log };
  }

  /**
   * Capacity accounting: call when an attempt is sent upstream. The tokens may
   * be given lazily: they are only counted for targets that have limits.
   */
  onAttemptStart(target: RouteTarget, estimatedTokens: number | (() => number)): void {
    this.#capacity.start(target.id, estimatedTokens);
  }

  /** Latency accounting: call when an attempt ends, successfully or not. */
  onAttemptEnd(target: RouteTarget, outcome: AttemptOutcome): void {
    this.#latency.record(target.id, outcome);
  }

  /** Takes a target out of rotation for new requests. False if no model has this target. */
  deactivate(targetId: string): boolean {
    if (!this.#known.has(targetId)) return false;
    this.#inactive.add(targetId);
    this.#activationVersion++;
    return true;
  }

  activate(targetId: string): boolean {
    if (!this.#known.has(targetId)) return false;
    this.#inactive.delete(targetId);
    this.#activationVersion++;
    return true;
  }

  isActive(targetId: string): boolean {
    return !this.#inactive.has(targetId);
  }

  /** Every model's targets with their routing state, for the admin API. */
  snapshot(): ModelTargetsView[] {
    const now = this.#capacity.now();
    return [...this.#models.values()].map((route) => ({
      model: route.name,
      strategy: this.#plan(route).strategy.name,
      targets: route.targets.map((t) => {
        const stats = this.#latency.get(t.id);
        return {
          id: t.id,
          provider: t.provider.name,
          model: t.model,
          role: t.role,
          tier: t.tier ?? null,
          weight: t.weight,
          active: !this.#inactive.has(t.id),
          available: this.#isAvailable?.(t.id) ?? true,
          latency_ewma_ms: round(stats?.latencyMs),
          ttft_ewma_ms: round(stats?.ttftMs),
          samples: stats?.samples ?? 0,
          capacity:
            t.limits && this.#capacity.has(t.id)
              ? {
                  rpm: t.limits.rpm ?? null,
                  tpm: t.limits.tpm ?? null,
                  burst: t.limits.burst ?? null,
                  use: Math.round(this.#capacity.use(t.id, now) * 1000) / 1000,
                }
              : null,
        };
      }),
    }));
  }

  #collect(
    plan: Plan,
    ctx: StrategyContext,
    who: RouteCaller,
    out: RouteTarget[],
    roles: number[],
    roleFloor: number,
    depth: number,
  ): void {
    const entries = plan.conditions.empty
      ? plan.route.entries
      : (plan.conditions.select(who) ?? plan.route.entries);
    for (const entry of plan.strategy.order(entries, ctx)) {
      const role = Math.max(roleFloor, ROLE_RANK[entry.role]);
      if (entry.target !== undefined) {
        if (!containsId(out, entry.target.id)) {
          out.push(entry.target);
          roles.push(role);
        }
        continue;
      }
      const sub = this.#models.get(entry.group!);
      // Config validation refuses deeper nesting; this only bounds the recursion.
      if (!sub || depth + 1 > MAX_GROUP_DEPTH) continue;
      const subPlan = this.#plan(sub);
      // The nested model decides with its own strategy; only the outer headers reach the client.
      const subCtx: StrategyContext = {
        ...ctx,
        random: subPlan.random,
        complexity: subPlan.complexity,
        headers: undefined,
        log: undefined,
      };
      this.#collect(subPlan, subCtx, who, out, roles, role, depth + 1);
    }
  }

  /** Stable bucket sort by (availability, saturation, role). */
  #rerank(ordered: RouteTarget[], roles: number[], shedAt: number): RouteTarget[] {
    const now = this.#capacity.now();
    const ranks = new Array<number>(ordered.length);
    let needed = false;
    for (let i = 0; i < ordered.length; i++) {
      const target = ordered[i]!;
      let state = 0;
      if (this.#isAvailable !== undefined && !this.#isAvailable(target.id)) state = 2;
      else if (target.limits !== undefined && this.#capacity.use(target.id, now) >= shedAt) state = 1;
      ranks[i] = state * 3 + roles[i]!;
      if (i > 0 && ranks[i]! < ranks[i - 1]!) needed = true;
    }
    if (!needed) return ordered;
    const out: RouteTarget[] = [];
    for (let rank = 0; rank < RANKS; rank++) {
      for (let i = 0; i < ordered.length; i++) if (ranks[i] === rank) out.push(ordered[i]!);
    }
    return out;
  }

  #plan(route: ModelRoute): Plan {
    const existing = this.#plans.get(route.name);
    if (existing && existing.route === route) return existing;
    const config = route.config;
    for (const target of route.targets) {
      this.#known.add(target.id);
      this.#capacity.configure(target.id, target.limits);
    }
    const strategy = STRATEGIES[config.strategy] ?? STRATEGIES['fallback']!;
    const conditions = new RouteConditions(config.routes ?? [], route.entries);
    const checksCapabilities = route.targets.some((t) => declaresCapabilities(t.capabilities));
    const ranks =
      route.entries.some((e) => e.role !== 'primary') ||
      route.targets.some((t) => t.role !== 'primary' || t.limits !== undefined);
    const plan: Plan = {
      route,
      strategy,
      conditions,
      random: this.#random ?? (config.seed === undefined ? Math.random : seededRandom(config.seed)),
      complexity: resolveComplexityPolicy(config.complexity, this.#classifiers, route.name),
      shedAt: config.shed_at,
      checksCapabilities,
      ranks,
      fixedOrder:
        strategy === STRATEGIES['fallback'] &&
        conditions.empty &&
        !checksCapabilities &&
        !ranks &&
        route.entries.every((e) => e.target !== undefined),
      fixed: undefined,
      preparers: undefined,
    };
    this.#plans.set(route.name, plan);
    return plan;
  }
}

function containsId(targets: readonly RouteTarget[], id: string): boolean {
  for (const target of targets) if (target.id === id) return true;
  return false;
}

function round(value: number | undefined): number | null {
  return value === undefined ? null : Math.round(value * 10) / 10;
}
