/**
 * Accounting for one upstream call that several requests share (embedding
 * micro-batching): dispatch runs the call with a BatchRecorder, as it would
 * with a request's own UsageRecorder, and every attempt it starts is also an
 * attempt of each member request, on that request's own recorder. When the
 * call's attempt ends, each member's attempt ends the same way (ok, failed,
 * client gone, hedge lost) with its share of the call's usage
 * (usage-shares.ts). So every request keeps its own ledger rows (one per
 * attempt that carried it, under its own request id and key), its own cost
 * (its `x-switchyard-cost-usd` and what its budget and token limits are
 * settled with) and its own metrics, exactly as if it had been sent alone,
 * and its rows add up to what the upstream billed.
 *
 * The call's own attempt writes no row (its ledger is a sink): it exists for
 * dispatch (the breaker permit, the router's latency and capacity), which
 * must see one upstream call, not one per member.
 */
import type { GatewayError } from '../core/errors.ts';
import type { Billed, Usage, UsageSource } from '../core/types.ts';
import { Attempt, type LedgerWriter, type RequestInfo, UsageRecorder } from './usage-recorder.ts';
import { shareBill } from './usage-shares.ts';

export interface BatchMember {
  /** The member request's own recorder. */
  recorder: UsageRecorder;
  /** Its part of the call's usage (e.g. its input's estimated tokens). */
  weight: number;
  /** Its client's signal: a member whose client has gone is billed as `client_closed`, never `ok`. */
  signal?: AbortSignal | undefined;
}

/** The call's own rows go nowhere: each member's recorder writes that member's. */
const NO_ROWS: LedgerWriter = { record: () => {} };

export class BatchRecorder extends UsageRecorder {
  readonly #members: readonly BatchMember[];
  readonly #weights: readonly number[];
  #attempts = 0;

  /** `info` names the call itself (its own request id, the upstream's `x-request-id`); it reaches no ledger. */
  constructor(members: readonly BatchMember[], info: RequestInfo) {
    super(NO_ROWS, undefined, info);
    this.#members = members;
    this.#weights = members.map((m) => m.weight);
  }

  override attempt(provider: string, model: string): BatchAttempt {
    this.#attempts++;
    this.lastProvider = provider;
    // Started now, so each member's row measures the same upstream call.
    const members = this.#members.map((m) => m.recorder.attempt(provider, model));
    return new BatchAttempt(this, this.#attempts, provider, model, members, this.#members, this.#weights);
  }
}

/** The call's attempt: each named ending is also each member's, with its share. */
export class BatchAttempt extends Attempt {
  /** Each member request's own attempt, in member order. */
  readonly members: readonly Attempt[];
  /** What each member was billed when this attempt ended (its share), in member order. */
  shares: readonly (Billed | undefined)[] | undefined;
  readonly #of: readonly BatchMember[];
  readonly #weights: readonly number[];
  #ended = false;

  constructor(
    recorder: BatchRecorder,
    number: number,
    provider: string,
    model: string,
    attempts: readonly Attempt[],
    members: readonly BatchMember[],
    weights: readonly number[],
  ) {
    super(recorder, number, provider, model);
    this.members = attempts;
    this.#of = members;
    this.#weights = weights;
  }

  /** Only the first ending counts, as for any attempt. */
  #first(): boolean {
    if (this.#ended) return false;
    this.#ended = true;
    return true;
  }

  override ok(usage: Usage | undefined, source: UsageSource = usage ? 'upstream' : 'none'): void {
    if (!this.#first()) return;
    super.ok(usage, source);
    const shares = shareBill(usage === undefined ? undefined : { usage, source }, this.#weights);
    this.shares = shares;
    this.members.forEach((attempt, i) => {
      const share = shares[i];
      // Answered, but to a client that has gone: billed as any abandoned request's attempt is.
      if (this.#of[i]!.signal?.aborted) attempt.clientClosed(share);
      else attempt.ok(share?.usage, share?.source ?? source);
    });
  }

  override failed(error: GatewayError, billed?: Billed): void {
    if (!this.#first()) return;
    super.failed(error, billed);
    const shares = shareBill(billed, this.#weights);
    this.shares = shares;
    this.members.forEach((attempt, i) => {
      attempt.failed(error, shares[i]);
    });
  }

  override clientClosed(billed?: Billed): void {
    if (!this.#first()) return;
    super.clientClosed(billed);
    const shares = shareBill(billed, this.#weights);
    this.shares = shares;
    this.members.forEach((attempt, i) => {
      attempt.clientClosed(shares[i]);
    });
  }

  override hedgeLost(billed?: Billed): void {
    if (!this.#first()) return;
    super.hedgeLost(billed);
    const shares = shareBill(billed, this.#weights);
    this.shares = shares;
    this.members.forEach((attempt, i) => {
      attempt.hedgeLost(shares[i]);
    });
  }
}
