/**
 * Embedding micro-batching in the gateway (config `models.<name>.batching`):
 * concurrent `/v1/embeddings` requests of one text each, to the same model,
 * ride in shared upstream calls of up to `max_batch` texts (sent when full,
 * or `max_wait_ms` after the first; at most `max_in_flight` calls at once
 * per batch key, the rest wait and keep filling), and each request is
 * answered its own vector.
 *
 * What may share a call: requests to the same model whose router decisions
 * give the same candidate targets in the same order (a routing condition that
 * sends one key elsewhere keeps it apart), with the same `dimensions` and
 * `encoding_format` (they change the output). `user` does not: a call
 * carries it when all its requests name the same one, else none. A request
 * with several inputs, token arrays or any other field is sent on its own,
 * as before.
 *
 * The shared call goes through the same dispatch as any request (routing
 * order, retries with their budget, breakers, hedging, fallback), once: the
 * breakers and the router see one upstream call. Billing is per request
 * (billing/batch-recorder.ts): each gets its own ledger row per attempt that
 * carried it, with its share of the call's usage (usage-shares.ts: the
 * upstream's total split in proportion to each input's estimated tokens,
 * summing exactly to it), and so its own cost, limits and budget settlement.
 * Everything before dispatch (auth, limits, cache lookup, routing decision)
 * and after it (cache store, headers, metrics) stays the request's own.
 *
 * Failures: a call that fails fails each of its requests with that error (in
 * the API's own error shape, as a lone request's would be). An upstream
 * refuses a batch as a whole when one input is bad (OpenAI answers 400
 * without saying which), so a call of several requests refused for its input
 * (400 or 422 naming `input` or no field, 413, context length) is sent again
 * one request at a time: the bad one gets its own refusal, the others their
 * answers; each request's rows then show both attempts. One at a time rather
 * than bisecting: predictable, and it costs only when an input is refused.
 */
import { Histogram, type Registry } from 'prom-client';
import { type BatchAttempt, BatchRecorder } from '../billing/batch-recorder.ts';
import { embeddingBill } from '../billing/embedding-usage.ts';
import type { Attempt, UsageRecorder } from '../billing/usage-recorder.ts';
import { ClientClosedError, GatewayError } from '../core/errors.ts';
import { estimateTextTokens } from '../core/token-estimate.ts';
import { type EmbeddingRequest, type EmbeddingResponse, USAGE_ESTIMATED, type Usage } from '../core/types.ts';
import type { AttemptContext } from '../providers/types.ts';
import type { Resilience } from '../resilience/resilience.ts';
import type { AttemptObserver } from '../routing/attempt-observer.ts';
import type { ModelRoute, RouteTarget } from '../routing/model-table.ts';
import { Batcher, type BatchTimer } from '../util/batcher.ts';
import { requestId } from '../util/request-id.ts';
import { dispatchWith } from './dispatch.ts';
import { type DispatchOptions, type DispatchReport, newDispatchReport } from './walk.ts';

/** Fields a shared call can carry for every request in it; a request with any other is sent alone. */
const SHAREABLE_FIELDS = new Set(['model', 'input', 'dimensions', 'encoding_format', 'user']);

/** What the batched request gets back: as `dispatchEmbeddings` answers (its attempt already billed its share). */
export interface BatchedEmbedding {
  response: EmbeddingResponse;
  attempt: Attempt;
}

export interface EmbeddingBatchesOptions {
  resilience?: Resilience | undefined;
  observer?: AttemptObserver | undefined;
  /** Where `switchyard_embedding_batch_inputs` is registered (inputs per upstream call); none when absent. */
  registry?: Registry | undefined;
  /** Batch timers (tests); setTimeout when absent. */
  timer?: BatchTimer | undefined;
}

/** One request riding in a batch. */
interface Member {
  text: string;
  /** Its share of the call's usage: its input's estimated tokens. */
  weight: number;
  user: string | undefined;
  recorder: UsageRecorder;
  signal: AbortSignal;
  report: DispatchReport | undefined;
}

/** What every request of a batch key sends alike. */
interface CallShape {
  route: ModelRoute;
  targets: RouteTarget[];
  fields: Pick<EmbeddingRequest, 'dimensions' | 'encoding_format'>;
}

/**
 * The request's one text when it may share an upstream call: batching is on
 * for its model, its input is one string (alone or in a one-element array),
 * and it has no field a shared call could not carry for it.
 */
export function batchableText(route: ModelRoute, request: EmbeddingRequest): string | undefined {
  if (!route.config.batching.enabled) return undefined;
  const input = request.input;
  const text =
    typeof input === 'string'
      ? input
      : input.length === 1 && typeof input[0] === 'string'
        ? input[0]
        : undefined;
  if (text === undefined) return undefined;
  for (const field of Object.keys(request)) if (!SHAREABLE_FIELDS.has(field)) return undefined;
  return text;
}

export class EmbeddingBatches {
  readonly #options: EmbeddingBatchesOptions;
  /** One Batcher per batch key while it has work; an idle one is dropped (keys can be many). */
  readonly #batchers = new Map<string, Batcher<Member, BatchedEmbedding>>();
  readonly #inputs: Histogram<'model'> | undefined;

  constructor(options: EmbeddingBatchesOptions = {}) {
    this.#options = options;
    this.#inputs =
      options.registry === undefined
        ? undefined
        : new Histogram({
            name: 'switchyard_embedding_batch_inputs',
            help: 'Inputs per shared upstream embeddings call (its count: the calls made)',
            labelNames: ['model'],
            buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2048],
            registers: [options.registry],
          });
  }

  /**
   * Embeds `text` (from `batchableText(route, request)`) in a call shared with
   * other requests; resolves as `dispatchEmbeddings` does, with a response of
   * one embedding and this request's share of the usage, its attempt already
   * ended (a further ending is ignored). `options` are the request's own:
   * its recorder bills it, its report says how the call went, its targets
   * and its signal (a request whose client leaves before its call does is
   * taken out of it) decide which calls it may ride in.
   */
  dispatch(
    route: ModelRoute,
    request: EmbeddingRequest,
    text: string,
    options: DispatchOptions,
  ): Promise<BatchedEmbedding> {
    const targets = options.targets ?? route.targets;
    const key = batchKey(route, targets, request);
    let batcher = this.#batchers.get(key);
    if (batcher === undefined) {
      batcher = this.#batcher({ route, targets, fields: shapeOf(request) });
      this.#batchers.set(key, batcher);
    }
    const member: Member = {
      text,
      weight: estimateTextTokens(text),
      user: typeof request.user === 'string' ? request.user : undefined,
      recorder: options.recorder,
      signal: options.signal,
      report: options.report,
    };
    const signal = options.signal;
    const done = batcher.submit(member, signal);
    const idle = batcher;
    const forget = () => {
      if (idle.pending === 0 && idle.inFlight === 0 && this.#batchers.get(key) === idle) {
        this.#batchers.delete(key);
      }
    };
    return done.then(
      (served) => {
        forget();
        return served;
      },
      (error: unknown) => {
        forget();
        throw signal.aborted ? new ClientClosedError() : error;
      },
    );
  }

  /** Sends whatever waits now, without waiting for company (the gateway is draining). */
  flush(): void {
    for (const batcher of this.#batchers.values()) batcher.flush();
  }

  /** Sends whatever waits now; resolves once every shared call has finished. */
  async close(): Promise<void> {
    await Promise.all([...this.#batchers.values()].map((b) => b.close()));
  }

  #batcher(shape: CallShape): Batcher<Member, BatchedEmbedding> {
    const settings = shape.route.config.batching;
    return new Batcher({
      maxBatch: settings.max_batch,
      maxWaitMs: settings.max_wait_ms,
      maxInFlight: settings.max_in_flight,
      ...(this.#options.timer ? { timer: this.#options.timer } : {}),
      run: (members, signal) => this.#run(shape, members, signal),
    });
  }

  /** One shared call; when refused for an input, one request at a time so the bad one fails alone. */
  async #run(
    shape: CallShape,
    members: Member[],
    signal: AbortSignal,
  ): Promise<ReadonlyArray<BatchedEmbedding | Error>> {
    try {
      return await this.#call(shape, members, signal);
    } catch (error) {
      if (members.length < 2 || !refusesInput(error)) throw error;
      return Promise.all(
        members.map((member) =>
          this.#call(shape, [member], member.signal).then(
            (served) => served[0]!,
            (alone: unknown) => (alone instanceof Error ? alone : new Error(String(alone))),
          ),
        ),
      );
    }
  }

  /** Dispatches the members' texts as one request; each member answered and billed its part. */
  async #call(shape: CallShape, members: Member[], signal: AbortSignal): Promise<BatchedEmbedding[]> {
    const { route } = shape;
    const id = requestId();
    const weights = members.map((m) => m.weight);
    const first = members[0]!;
    const recorder = new BatchRecorder(members, {
      requestId: id,
      clientRequestId: null,
      keyId: null,
      route: first.recorder.info.route,
      modelRequested: route.name,
      stream: false,
    });
    const user = first.user;
    const body: EmbeddingRequest = {
      model: route.name,
      input: members.map((m) => m.text),
      ...shape.fields,
      ...(user !== undefined && members.every((m) => m.user === user) ? { user } : {}),
    };
    this.#inputs?.observe({ model: route.name }, members.length);
    const report = newDispatchReport();
    try {
      const { response, vectors, attempt } = await dispatchWith(
        route,
        {
          signal,
          requestId: id,
          recorder,
          targets: shape.targets,
          observer: this.#options.observer,
          resilience: this.#options.resilience,
          report,
          estimatePromptTokens: () => weights.reduce((sum, w) => sum + w, 0),
        },
        (target, ctx, attempt) => embedAll(target, ctx, attempt as BatchAttempt, body),
        discardLate,
      );
      const billed = embeddingBill(response);
      // Bills every member its share (one whose client has gone as client_closed).
      attempt.ok(billed.usage, billed.source);
      const shares = attempt.shares!;
      const estimated = billed.source === 'estimated';
      return members.map((_, i) => ({
        response: memberResponse(response.model, vectors[i]!, shares[i]!.usage, estimated),
        attempt: attempt.members[i]!,
      }));
    } finally {
      // Each request's headers say how the calls it rode in went (a shared one, then its own when refused).
      for (const member of members) if (member.report !== undefined) addReport(member.report, report);
    }
  }
}

interface EmbeddedAll {
  response: EmbeddingResponse;
  /** One per input, in input order. */
  vectors: Array<number[] | string>;
  attempt: BatchAttempt;
}

/** One attempt of the shared call: an answer that cannot be matched to its inputs fails it (and may be retried). */
async function embedAll(
  target: RouteTarget,
  ctx: AttemptContext,
  attempt: BatchAttempt,
  body: EmbeddingRequest,
): Promise<EmbeddedAll> {
  const response = await target.provider.embed({ ...body, model: target.model }, ctx);
  return { response, vectors: inInputOrder(response, (body.input as string[]).length), attempt };
}

function discardLate(late: EmbeddedAll): void {
  late.attempt.hedgeLost(embeddingBill(late.response));
}

/** The answer's vectors by their `index`: exactly one per input, or the answer is unusable. */
function inInputOrder(response: EmbeddingResponse, inputs: number): Array<number[] | string> {
  const data = Array.isArray(response.data) ? response.data : [];
  const vectors = new Array<number[] | string | undefined>(inputs);
  let placed = 0;
  for (const item of data) {
    const index = item?.index;
    if (!Number.isInteger(index) || index < 0 || index >= inputs || vectors[index] !== undefined) break;
    vectors[index] = item.embedding;
    placed++;
  }
  if (placed !== inputs || data.length !== inputs) {
    throw new GatewayError(
      'upstream_bad_response',
      `Upstream answered ${data.length} embeddings for ${inputs} inputs, or indexes that do not match them`,
    );
  }
  return vectors as Array<number[] | string>;
}

/** A lone request's answer: its one embedding, at index 0, with its share of the usage. */
function memberResponse(
  model: string,
  embedding: number[] | string,
  share: Usage,
  estimated: boolean,
): EmbeddingResponse {
  const response: EmbeddingResponse = {
    object: 'list',
    data: [{ object: 'embedding', index: 0, embedding }],
    model,
    usage: { prompt_tokens: share.prompt_tokens, total_tokens: share.total_tokens },
  };
  if (estimated) response[USAGE_ESTIMATED] = true;
  return response;
}

function addReport(to: DispatchReport, call: DispatchReport): void {
  to.attempts += call.attempts;
  to.target = call.target ?? to.target;
  to.fallbackReason = call.fallbackReason ?? to.fallbackReason;
}

/** Requests with the same key may share a call: same model, same candidates in order, same output fields. */
function batchKey(route: ModelRoute, targets: readonly RouteTarget[], request: EmbeddingRequest): string {
  let key = `${route.name}\n${request.dimensions ?? ''}\n${request.encoding_format ?? ''}`;
  for (const target of targets) key += `\n${target.id}`;
  return key;
}

function shapeOf(request: EmbeddingRequest): CallShape['fields'] {
  return {
    ...(request.dimensions !== undefined ? { dimensions: request.dimensions } : {}),
    ...(request.encoding_format !== undefined ? { encoding_format: request.encoding_format } : {}),
  };
}

/**
 * The upstream refused the call for an input (not for a field every request
 * shares, nor for anything else): worth sending its requests one at a time.
 */
function refusesInput(error: unknown): boolean {
  if (!GatewayError.is(error)) return false;
  if (error.param !== undefined && error.param !== 'input') return false;
  switch (error.code) {
    case 'context_length_exceeded':
    case 'request_too_large':
      return true;
    case 'upstream_client_error':
    case 'invalid_request':
      return error.status === 400 || error.status === 422;
    default:
      return false;
  }
}
