/**
 * What happens to every request around its route, in one place for both ways
 * a request is served: Fastify's hooks and error handler (app.ts) call these,
 * and so does the model lane (lane/model-lane.ts), which serves the hottest
 * route without Fastify's router and hook runner.
 *
 * In order: `openRequest` as the request arrives (its id is already chosen,
 * `requestIdOf`); the route; `answerError` for what it throws; `whenSendable`
 * just before an answer is written; `requestFinished` once it was.
 */
import type { IncomingMessage } from 'node:http';
import { toOpenAIError } from '../api/openai/openai-inbound-error.ts';
import type { KeyStore } from '../auth/key-store.ts';
import { ClientClosedError, GatewayError } from '../core/errors.ts';
import { requestId } from '../util/request-id.ts';
import type { GatewayContext } from './context.ts';
import type { GatewayReply, GatewayRequest } from './exchange.ts';
import { INTERNAL_REQUEST_ID_HEADER } from './internal-requests.ts';
import { LimitRefusal } from './request-limits.ts';
import { requestLogger } from './request-log.ts';
import { endRequestTrace, startRequestTrace } from './request-trace.ts';

/** Renders a route's errors in its API's shape (OpenAI's unless the route says otherwise). */
export type ErrorRenderer = (error: GatewayError, requestId: string) => { status: number; body: unknown };

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Honours a sane client `x-request-id`; anything else (CRLF, huge) is replaced.
 * A request the gateway sends itself (internal-requests.ts) names its own id.
 */
export function requestIdOf(req: IncomingMessage, keys: KeyStore): string {
  const internal = req.headers[INTERNAL_REQUEST_ID_HEADER];
  if (typeof internal === 'string' && REQUEST_ID.test(internal)) {
    const authorization = req.headers.authorization;
    if (authorization !== undefined && keys.isInternal(authorization.slice(7))) return internal;
  }
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : requestId();
}

/**
 * The request is in flight from here until the response is finished or the
 * connection closes first (a client abort, streams included): Node emits
 * 'close' on the response exactly once in either case (so `on`, without
 * `once`'s wrapper). Called in the tick the request arrived, so the socket
 * cannot have closed unseen.
 */
export function openRequest(
  gw: GatewayContext,
  request: GatewayRequest,
  reply: GatewayReply,
  route: string,
): void {
  request.routeUrl = route;
  gw.metrics.requestStarted(route);
  startRequestTrace(gw.tracing, request, route);
  reply.raw.on('close', () => {
    gw.metrics.requestEnded(route);
    endRequestTrace(request, reply);
  });
  reply.header('x-request-id', request.id);
}

/**
 * Answers what a route or hook threw, in the route's error shape: 499 with
 * nothing for a client that went away, `retry-after` when the error says when.
 */
export function answerError(
  gw: GatewayContext,
  request: GatewayRequest,
  reply: GatewayReply,
  error: GatewayError | Error,
  asGatewayError: (error: Error) => GatewayError,
  render: ErrorRenderer = toOpenAIError,
): void {
  if (error instanceof ClientClosedError) {
    // Nobody is listening any more; the ledger already has the row.
    reply.code(499).send();
    return;
  }
  const gatewayError = GatewayError.is(error) ? error : asGatewayError(error);
  if (gatewayError instanceof LimitRefusal) {
    gw.metrics.limitRefused(
      gatewayError.code === 'budget_exceeded' ? 'budget' : 'rate',
      gatewayError.scope,
      gatewayError.limit,
    );
  }
  if (gatewayError.code === 'internal_error') {
    request.log.error({ err: error }, 'unhandled error');
  }
  if (gatewayError.retryAfterMs !== undefined) {
    reply.header('retry-after', String(Math.max(1, Math.ceil(gatewayError.retryAfterMs / 1000))));
  }
  const rendered = render(gatewayError, request.id);
  reply.code(rendered.status).send(rendered.body);
}

/**
 * Calls `send` once the answer may leave: a model request's answer leaves once
 * its usage rows are on disk (the ledger spool writes them at once when quiet,
 * else with the turn's others), so a client that has its answer has its bill
 * survive a kill -9. Through the recorder: the wait is the request's `ledger
 * write` span when traced.
 */
export function whenSendable(request: GatewayRequest, send: () => void): void {
  if (request.usage === null) send();
  else request.usage.whenDurable(send);
}

/**
 * The response was written whole: request metrics for requests no
 * UsageRecorder accounted for (early errors, health, admin), and the request's
 * log line (request-log.ts, with the trace id when traced).
 */
export function requestFinishedBy(
  gw: GatewayContext,
): (request: GatewayRequest, reply: GatewayReply) => void {
  const logRequest = requestLogger(
    { sampleRate: gw.config.logging.sample_rate },
    (request) => request.trace.traceId || undefined,
  );
  return (request, reply) => {
    if (request.usage === null) {
      const labels = {
        route: request.routeUrl,
        model: 'none',
        provider: 'none',
        status: String(reply.statusCode),
      };
      gw.metrics.requests.inc(labels);
      gw.metrics.requestDuration.observe(labels, reply.elapsedTime / 1000);
    }
    logRequest(request, reply);
  };
}
