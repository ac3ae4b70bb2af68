/**
 * Each dispatch wrapper on its own, with a fake inner step (the "adapter"),
 * a fake clock for the breakers and a fake sleep for retries: the breaker
 * admits or refuses, the budget pays for every attempt after the first,
 * retries honour their rules, a hedge races the next candidate, and the
 * composition runs them in the order given.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { ClientClosedError, GatewayError } from '../../src/core/errors.ts';
import type { ChatCompletion, ChatCompletionChunk } from '../../src/core/types.ts';
import type { ProviderAdapter } from '../../src/providers/types.ts';
import { withBreaker } from '../../src/resilience/breaker-step.ts';
import { withBudget } from '../../src/resilience/budget-step.ts';
import type { CircuitOpenError as OpenError } from '../../src/resilience/circuit-breaker.ts';
import { CircuitOpenError } from '../../src/resilience/circuit-breaker.ts';
import {
  AttemptSlot,
  composeSteps,
  type DispatchState,
  RetryBudgetExhaustedError,
  type Step,
  type Wrapper,
} from '../../src/resilience/dispatch-step.ts';
import { withHedge } from '../../src/resilience/hedge-step.ts';
import { Resilience } from '../../src/resilience/resilience.ts';
import { withRetry } from '../../src/resilience/retry-step.ts';
import { buildModelTable, type RouteTarget } from '../../src/routing/model-table.ts';

class IdleAdapter implements ProviderAdapter {
  readonly name = 'fake';
  readonly type = 'mock';
  chat(): Promise<ChatCompletion> {
    throw new Error('the steps under test never reach the adapter');
  }
  streamChat(): Promise<AsyncIterable<ChatCompletionChunk>> {
    throw new Error('unused');
  }
  embed(): never {
    throw new Error('unused');
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function rig(model: Record<string, unknown> = {}, resilience: Record<string, unknown> = {}) {
  let now = 1_000_000;
  const config = validateConfig({
    providers: { fake: { type: 'mock' } },
    resilience,
    models: {
      m: {
        targets: [
          { provider: 'fake', model: 'a' },
          { provider: 'fake', model: 'b' },
        ],
        circuit_breaker: {
          enabled: true,
          failure_threshold: 1,
          min_requests: 1,
          recovery_timeout_ms: 60_000,
        },
        ...model,
      },
    },
  });
  const models = buildModelTable(config, new Map([['fake', new IdleAdapter()]]));
  const route = models.get('m')!;
  const res = new Resilience(config, models, { clock: () => now });
  const targets = route.targets;
  const events: string[] = [];
  const sleeps: number[] = [];
  let next = 1; // the first target is the one being attempted
  let launched = 0;
  const state: DispatchState & { launched: number } = {
    route,
    signal: new AbortController().signal,
    resilience: res,
    observer: undefined,
    get launched() {
      return launched;
    },
    set launched(n: number) {
      launched = n;
    },
    hasMoreCandidates: () => next < targets.length,
    takeCandidate: () => targets[next++],
    untakeCandidate: () => {
      next--;
    },
    skipped: (error: OpenError) => events.push(`skipped ${error.breakerId}`),
    failed: (error: GatewayError) => events.push(`failed ${error.code}`),
    retried: (target: RouteTarget, code: string) => events.push(`retried ${target.id} ${code}`),
    hedged: (target: RouteTarget, outcome: string) => events.push(`hedge ${outcome} ${target.id}`),
    discardLate: () => events.push('discarded'),
    sleep: (ms: number) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
  };
  const slot = (target = targets[0]!) => new AttemptSlot(target, state.signal, undefined);
  return {
    state,
    slot,
    targets,
    events,
    sleeps,
    resilience: res,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const upstreamError = (
  code: 'upstream_error' | 'upstream_timeout' | 'upstream_rate_limited' = 'upstream_error',
  retryAfterMs?: number,
) => new GatewayError(code, 'upstream failed', retryAfterMs !== undefined ? { retryAfterMs } : {});

/** An inner step that answers from a script: a value, or an error to throw. */
function scripted<T>(script: Array<T | Error>, seen: AttemptSlot[] = []): Step<T> {
  return (_state, slot) => {
    seen.push(slot);
    const next = script.shift();
    if (next === undefined) return Promise.reject(new Error('script exhausted'));
    return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
  };
}

describe('withBreaker', () => {
  test('a closed breaker admits at once and the slot settles the permit on the attempt end', async () => {
    const r = rig();
    const slot = r.slot();
    const answer = await withBreaker(scripted(['ok']))(r.state, slot);
    assert.equal(answer, 'ok');
    assert.notEqual(slot.permit.success, undefined);
    // A failure the upstream produced counts, and opens this breaker (threshold 1).
    slot.attemptEnded({ status: 'error', errorCode: 'upstream_error' }, 5, null);
    await slot.settled;
    assert.equal(r.resilience.breaker(r.targets[0]!.id)?.state, 'open');
  });

  test('an open breaker refuses with CircuitOpenError and nothing is sent', async () => {
    const r = rig();
    const first = r.slot();
    await withBreaker(scripted(['ok']))(r.state, first);
    first.attemptEnded({ status: 'error', errorCode: 'upstream_timeout' }, 5, null);
    await first.settled;
    const sent: AttemptSlot[] = [];
    await assert.rejects(withBreaker(scripted(['ok'], sent))(r.state, r.slot()), CircuitOpenError);
    assert.equal(sent.length, 0);
  });

  test("the gateway's own failures and the client's never count against the target", async () => {
    const r = rig();
    for (const code of ['internal_error', 'invalid_request', 'upstream_auth_error', 'client_closed']) {
      const slot = r.slot();
      await withBreaker(scripted(['ok']))(r.state, slot);
      slot.attemptEnded({ status: 'error', errorCode: code }, 5, null);
      await slot.settled;
    }
    assert.equal(r.resilience.breaker(r.targets[0]!.id)?.state, 'closed');
  });
});

describe('withBudget', () => {
  test("a request's first attempt is free; later ones need a lease, released when they end", async () => {
    const r = rig({}, { retry_budget_ratio: 0.1, retry_budget_min_concurrent: 1 });
    const budget = r.resilience.budget;
    // Spend the bucket so only the concurrency floor (1) is left.
    while (budget.tokens >= 1) budget.tryAcquire()?.release();
    assert.equal(budget.inFlight, 0);

    const free = await withBudget(scripted(['first']))(r.state, r.slot());
    assert.equal(free, 'first');
    assert.equal(budget.inFlight, 0, 'the first attempt takes no lease');

    r.state.launched = 1;
    let release: (value: string) => void = () => {};
    const pending = withBudget<string>(() => new Promise((resolve) => (release = resolve)))(
      r.state,
      r.slot(),
    );
    assert.equal(budget.inFlight, 1, 'the retry holds a lease while it runs');
    await assert.rejects(withBudget(scripted(['x']))(r.state, r.slot()), RetryBudgetExhaustedError);
    release('second');
    assert.equal(await pending, 'second');
    assert.equal(budget.inFlight, 0, 'released when the attempt ended');
  });
});

describe('withRetry', () => {
  test('retries a retryable failure on the same target with a fresh slot, after a backoff', async () => {
    const r = rig({ retries: { max: 2, base_ms: 100, max_backoff_ms: 1_000 } });
    const seen: AttemptSlot[] = [];
    const answer = await withRetry(scripted([upstreamError(), upstreamError(), 'ok'], seen))(
      r.state,
      r.slot(),
    );
    assert.equal(answer, 'ok');
    assert.equal(seen.length, 3);
    assert.equal(new Set(seen).size, 3, 'a new slot per attempt');
    assert.ok(seen.every((s) => s.target === r.targets[0]));
    assert.equal(r.sleeps.length, 2);
    assert.ok(r.sleeps[0]! < 100 && r.sleeps[1]! < 200, `full jitter under the ceiling: ${r.sleeps}`);
    assert.deepEqual(r.events, [
      'failed upstream_error',
      'retried fake/a upstream_error',
      'failed upstream_error',
      'retried fake/a upstream_error',
    ]);
  });

  test('stops at retries.max and throws the last failure', async () => {
    const r = rig({ retries: { max: 1, base_ms: 1 } });
    const seen: AttemptSlot[] = [];
    await assert.rejects(
      withRetry(scripted([upstreamError(), upstreamError('upstream_rate_limited')], seen))(r.state, r.slot()),
      (e: unknown) => GatewayError.is(e) && e.code === 'upstream_rate_limited',
    );
    assert.equal(seen.length, 2);
  });

  test('honours Retry-After as a floor, and refuses one longer than max_retry_after_ms', async () => {
    const r = rig({ retries: { max: 2, base_ms: 10, max_retry_after_ms: 5_000 } });
    await withRetry(scripted([upstreamError('upstream_rate_limited', 2_000), 'ok']))(r.state, r.slot());
    assert.ok(r.sleeps[0]! >= 2_000 && r.sleeps[0]! < 2_010, String(r.sleeps[0]));
    const seen: AttemptSlot[] = [];
    await assert.rejects(
      withRetry(scripted([upstreamError('upstream_rate_limited', 60_000), 'ok'], seen))(r.state, r.slot()),
    );
    assert.equal(seen.length, 1, 'a wait beyond the bound is not waited out');
  });

  test('does not retry final errors, gateway failures, or a timeout while another candidate is left', async () => {
    for (const error of [
      new GatewayError('invalid_request', 'bad'),
      new GatewayError('internal_error', 'bug'),
      upstreamError('upstream_timeout'),
    ]) {
      const r = rig({ retries: { max: 3, base_ms: 1 } });
      const seen: AttemptSlot[] = [];
      await assert.rejects(withRetry(scripted([error, 'ok'], seen))(r.state, r.slot()));
      assert.equal(seen.length, 1, error.code);
    }
  });

  test('a client gone during the backoff ends it as ClientClosedError', async () => {
    const r = rig({ retries: { max: 2, base_ms: 1 } });
    r.state.sleep = () => Promise.reject(new Error('aborted'));
    await assert.rejects(withRetry(scripted([upstreamError(), 'ok']))(r.state, r.slot()), ClientClosedError);
  });

  test('a retry the breaker refuses ends retrying with the failure that caused it', async () => {
    const r = rig({ retries: { max: 3, base_ms: 1 } });
    await assert.rejects(
      withRetry(scripted([upstreamError(), new CircuitOpenError('fake/a', 1000)]))(r.state, r.slot()),
      (e: unknown) => GatewayError.is(e) && e.code === 'upstream_error',
    );
  });
});

describe('withHedge', () => {
  test('a slow first attempt races the next candidate; the first answer wins, the loser is aborted', async () => {
    const r = rig({ hedging: { enabled: true, delay_ms: 1, max_hedges: 1 } });
    const slots: AttemptSlot[] = [];
    const inner: Step<string> = (_state, slot) => {
      slots.push(slot);
      if (slot.target === r.targets[0]) {
        // The first never answers; it ends when the race aborts it.
        return new Promise((_, reject) =>
          slot.signal.addEventListener('abort', () => reject(slot.signal.reason)),
        );
      }
      return Promise.resolve(`from ${slot.target.id}`);
    };
    const answer = await withHedge(inner)(r.state, r.slot());
    assert.equal(answer, 'from fake/b');
    assert.equal(slots.length, 2);
    assert.equal(slots[1]!.hedge, true);
    assert.equal(slots[0]!.signal.aborted, true, 'the loser was aborted');
    assert.deepEqual(r.events, ['hedge won fake/b']);
  });

  test('without hedging, or without another candidate, it is a pass-through', async () => {
    const r = rig();
    const seen: AttemptSlot[] = [];
    assert.equal(await withHedge(scripted(['direct'], seen))(r.state, r.slot()), 'direct');
    assert.equal(seen.length, 1);
  });
});

describe('composeSteps', () => {
  test('runs the wrappers outermost first, around the inner step', async () => {
    const order: string[] = [];
    const tag =
      (name: string): Wrapper =>
      <T>(next: Step<T>): Step<T> =>
      (state, slot) => {
        order.push(name);
        return next(state, slot);
      };
    const r = rig();
    const step = composeSteps([tag('outer'), tag('middle'), tag('inner')], scripted(['done']));
    assert.equal(await step(r.state, r.slot()), 'done');
    assert.deepEqual(order, ['outer', 'middle', 'inner']);
  });
});
