/**
 * What every route that calls a model shares (OpenAI's and Anthropic's): the
 * routing decision, the request's UsageRecorder and abort-on-close, the
 * `x-switchyard-*` headers that say how it was served, and the relay loop of
 * a started stream. What is billed is decided in billing/, not here.
 */
import { type Attempt, UsageRecorder } from '../../billing/usage-recorder.ts';
import { ClientClosedError, type GatewayError, toGatewayError } from '../../core/errors.ts';
import type { ChatRequest, EmbeddingRequest } from '../../core/types.ts';
import {
  type DispatchOptions,
  type DispatchReport,
  newDispatchReport,
  type StreamStart,
} from '../../dispatch/dispatch.ts';
import { ATTR } from '../../observability/trace-attributes.ts';
import { failAndEnd, type TraceSpan } from '../../observability/tracing.ts';
import type { RelayableStream } from '../../providers/upstream-event-stream.ts';
import type { ModelRoute, RouteTarget } from '../../routing/model-table.ts';
import type { RoutingDecision } from '../../routing/router.ts';
import { once } from '../../util/once.ts';
import { requestId } from '../../util/request-id.ts';
import { abortOnClientClose } from '../client-abort.ts';
import type { GatewayContext } from '../context.ts';
import type { GatewayReply, GatewayRequest } from '../exchange.ts';
import type { Sent, SseWriter } from '../sse-writer.ts';

/** What a request answered in one piece cost, in USD (all its attempts; absent when a price is unknown). */
const COST_HEADER = 'x-switchyard-cost-usd';

/** Says what the response cache did for a model request: `hit`, `semantic-hit`, `miss` or `bypass`. */
export const CACHE_HEADER = 'x-switchyard-cache';

export type ModelDispatch = DispatchOptions & {
  report: DispatchReport;
};

/** A chat request's dispatch: its prompt can always be estimated (to bill a cut stream). */
export type ChatDispatch = ModelDispatch & { estimatePromptTokens: () => number };

/**
 * The routing decision's asynchronous part, awaited before beginModelRequest
 * with the same body: a complexity classifier that needs an upstream call
 * (the judge) makes it here. Models without one return at once.
 */
export function prepareRouting(
  gw: GatewayContext,
  request: GatewayRequest,
  reply: GatewayReply,
  route: ModelRoute,
  body: ChatRequest | EmbeddingRequest,
): Promise<void> | undefined {
  // Nothing to await for most models: no promise and no tick on the hot path.
  if (!gw.router.prepares(route)) return undefined;
  const caller = { key: request.key!, headers: request.headers };
  return gw.router.prepare(route, body, caller, abortOnClientClose(reply));
}

/**
 * Starts a model request: the router orders the model's targets for it (its
 * headers go to the client, its details to the request's log lines), a
 * UsageRecorder accounts for it (ledger rows and metrics), and an abort
 * signal fires when the client goes away before the answer is complete (so
 * the upstream call is cancelled and nobody pays for tokens no one reads).
 */
export function beginModelRequest<Estimate extends (() => number) | undefined = undefined>(
  gw: GatewayContext,
  request: GatewayRequest,
  reply: GatewayReply,
  route: ModelRoute,
  body: ChatRequest | EmbeddingRequest,
  info: { route: string; stream: boolean; estimatePromptTokens?: Estimate },
): ModelDispatch & { estimatePromptTokens: Estimate } {
  const key = request.key!;
  const routing = request.trace.child('routing');
  let decision: RoutingDecision;
  try {
    decision = gw.router.decide(route, body, { key, headers: request.headers });
  } catch (error) {
    failAndEnd(routing, error);
    throw error;
  }
  if (routing.recording) traceRouting(gw, request, routing, decision.candidates, body);
  reply.headers(decision.headers);
  if (decision.log !== undefined) request.log = request.log.child({ routing: decision.log });
  const recorder = recordRequest(gw, request, body.model, info);
  return {
    signal: abortOnClientClose(reply),
    requestId: request.id,
    recorder,
    targets: decision.candidates,
    observer: gw.router,
    resilience: gw.resilience,
    report: newDispatchReport(),
    // Dispatch, the stream tally and the relay may each ask: walk the prompt once.
    estimatePromptTokens: (info.estimatePromptTokens && once(info.estimatePromptTokens)) as Estimate,
  };
}

/** The request's UsageRecorder (its ledger rows and metrics), owned by the request from here on. */
export function recordRequest(
  gw: GatewayContext,
  request: GatewayRequest,
  model: string,
  info: { route: string; stream: boolean },
): UsageRecorder {
  const key = request.key!;
  // A client's x-request-id is echoed and logged, but never keys the ledger:
  // two requests sending the same one must both be billed.
  const clientRequestId = request.headers['x-request-id'] === request.id ? request.id : null;
  const recorder = new UsageRecorder(
    gw.ledger,
    gw.metrics,
    {
      requestId: clientRequestId === null ? request.id : requestId(),
      clientRequestId,
      keyId: key.isMaster ? null : key.id,
      teamId: key.teamId,
      route: info.route,
      modelRequested: model,
      stream: info.stream,
    },
    gw.pricer,
  );
  recorder.trace = request.trace;
  request.usage = recorder;
  return recorder;
}

/**
 * The routing span: how many candidates, which first. The prompt goes on the
 * request's span only when content capture is on (tracing.capture_content).
 */
function traceRouting(
  gw: GatewayContext,
  request: GatewayRequest,
  span: TraceSpan,
  candidates: readonly RouteTarget[],
  body: ChatRequest | EmbeddingRequest,
): void {
  span.set(ATTR.candidates, candidates.length);
  span.set(ATTR.firstTarget, candidates[0]?.id);
  span.end();
  if (gw.tracing.captureContent) {
    const content = 'messages' in body ? body.messages : body.input;
    request.trace.set(ATTR.genAiInputMessages, JSON.stringify(content));
  }
}

/** Which target served, how many attempts it took, and why it fell back (if it did). */
export function dispatchHeaders(report: DispatchReport): Record<string, string> {
  const headers: Record<string, string> = { 'x-switchyard-attempts': String(report.attempts) };
  if (report.target !== undefined) headers['x-switchyard-target'] = report.target;
  if (report.fallbackReason !== undefined) headers['x-switchyard-fallback-reason'] = report.fallbackReason;
  return headers;
}

/**
 * The headers a stream starts with: a hijacked reply does not send the ones
 * set on it, so they are taken over (the request id, the router's decision,
 * rate limits), then how it was served: the dispatch's headers and provider
 * when an upstream answers, and what the cache did.
 */
export function streamHeaders(
  reply: GatewayReply,
  dispatch: ModelDispatch,
  attempt?: Attempt,
): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined) headers[name] = typeof value === 'number' ? String(value) : value;
  }
  if (attempt !== undefined) {
    Object.assign(headers, dispatchHeaders(dispatch.report));
    headers['x-switchyard-provider'] = attempt.provider;
  }
  headers[CACHE_HEADER] = dispatch.recorder.cacheStatus;
  return headers;
}

/** Headers and request-level metrics of a model request answered in one piece. */
export function finishOk(reply: GatewayReply, dispatch: ModelDispatch, attempt: Attempt): void {
  reply.header('x-switchyard-provider', attempt.provider);
  reply.headers(dispatchHeaders(dispatch.report));
  sayCost(reply, dispatch.recorder);
  dispatch.recorder.finish(200);
}

/** `x-switchyard-cost-usd`: what the request's attempts cost (nothing said when a price is unknown). */
export function sayCost(reply: GatewayReply, recorder: UsageRecorder): void {
  const cost = recorder.costUsd;
  if (cost !== undefined) reply.header(COST_HEADER, cost);
}

/**
 * Request-level metrics and headers for a model request that failed before any
 * answer; `statusOf` gives the status the route answers with, when it differs
 * from the gateway's.
 */
export function finishFailed(
  reply: GatewayReply,
  dispatch: ModelDispatch,
  error: unknown,
  statusOf: (error: GatewayError) => number = (e) => e.status,
): never {
  reply.headers(dispatchHeaders(dispatch.report));
  dispatch.recorder.finish(error instanceof ClientClosedError ? 499 : statusOf(toGatewayError(error)));
  throw error;
}

/**
 * Hands a started stream's items to `send` (false: the client is gone) until
 * the stream ends, fails or the client leaves; a client gone releases the
 * upstream at once. A failure is returned, not thrown: the status is already 200.
 *
 * An upstream's event stream is relayed push-style (`relay`: each item sent
 * in the call that read it); any other stream is pulled item by item.
 */
export async function relayStream<Item>(
  start: StartedStream<Item>,
  signal: AbortSignal,
  writer: SseWriter,
  send: (item: Item) => Sent,
): Promise<{ failure: GatewayError | undefined; clientGone: boolean }> {
  const { rest } = start;
  let failure: GatewayError | undefined;
  try {
    const first = send(start.first);
    if (first === true || (first !== false && (await first))) {
      if (typeof rest.relay === 'function') {
        const ended = await rest.relay(send);
        if (ended.failure !== undefined) throw ended.failure;
      } else await pullEach(rest, send);
    }
  } catch (error) {
    if (!(error instanceof ClientClosedError) && !signal.aborted) failure = toGatewayError(error);
  }
  const clientGone = signal.aborted || writer.closed;
  if (clientGone) await rest.return?.().catch(() => undefined);
  return { failure, clientGone };
}

/** A started stream whose rest may be relayed push-style (an upstream's event stream is). */
type StartedStream<Item> = Omit<StreamStart<Item>, 'rest'> & {
  rest: StreamStart<Item>['rest'] & Partial<Pick<RelayableStream<Item>, 'relay'>>;
};

/** The pull form: the next item once the last one is written (a write waiting for drain is awaited). */
async function pullEach<Item>(rest: AsyncIterator<Item>, send: (item: Item) => Sent): Promise<void> {
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    const sent = send(next.value);
    if (sent === false || (sent !== true && !(await sent))) return;
  }
}
