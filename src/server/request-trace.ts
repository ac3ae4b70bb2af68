/**
 * The request span on the HTTP side: started in the first hook (a child of
 * the client's `traceparent` when it sent one), ended when the response is
 * finished or its connection closed, streams included. Probes and scrapes
 * (health, metrics) are not traced: a span per Kubernetes probe buries the
 * traffic worth looking at.
 */
import { ATTR } from '../observability/trace-attributes.ts';
import { NOOP_SPAN, type TraceSpan, type Tracing } from '../observability/tracing.ts';
import type { GatewayReply, GatewayRequest } from './exchange.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's span; NOOP_SPAN when tracing is off or the route is not traced. */
    trace: TraceSpan;
  }
}

const UNTRACED_ROUTES: ReadonlySet<string> = new Set([
  '/health',
  '/health/live',
  '/health/ready',
  '/health/deep',
  '/metrics',
]);

/** Starts the request's span (NOOP_SPAN, with no work at all, when tracing is off). */
export function startRequestTrace(tracing: Tracing, request: GatewayRequest, route: string): void {
  if (!tracing.enabled || UNTRACED_ROUTES.has(route)) {
    request.trace = NOOP_SPAN;
    return;
  }
  const span = tracing.startRequest(request.method, route, request.headers);
  span.set(ATTR.requestId, request.id);
  request.trace = span;
}

/**
 * Ends the request's span with the status the client got; a 5xx marks it
 * failed (a 4xx is the client's, as HTTP's conventions say for servers).
 */
export function endRequestTrace(request: GatewayRequest, reply: GatewayReply): void {
  const span = request.trace;
  if (!span.recording) return;
  const status = reply.raw.statusCode;
  span.set(ATTR.httpResponseStatusCode, status);
  // Closed before the response was whole: the client went away (a stream cut short).
  if (!reply.raw.writableFinished) span.set(ATTR.clientClosed, true);
  if (status >= 500) span.fail(String(status));
  span.end();
}
