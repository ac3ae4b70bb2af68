/**
 * The request and reply the gateway's own code works with: the part of
 * Fastify's `FastifyRequest` and `FastifyReply` that hooks, routes and their
 * helpers use. Fastify's objects are these; so are the model lane's
 * (lane/lane-exchange.ts), which serves the hottest route without Fastify's
 * router and hook runner. Code written against these runs on either.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import type { AuthenticatedKey } from '../auth/key-store.ts';
import type { UsageRecorder } from '../billing/usage-recorder.ts';
import type { TraceSpan } from '../observability/tracing.ts';

export interface GatewayRequest {
  readonly id: string;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly raw: IncomingMessage;
  readonly body: unknown;
  /** The JSON body's text when short enough for the cache to key by (json-body.ts). */
  bodyText: string | undefined;
  /** The caller's key, once authenticated. */
  key: AuthenticatedKey | null;
  /** Set once a model request is accounted for; it then owns the request's metrics. */
  usage: UsageRecorder | null;
  /** The request's span; NOOP_SPAN when tracing is off or the route is not traced. */
  trace: TraceSpan;
  /** The route's URL pattern (`unmatched` for none): the request's metric label and log member. */
  routeUrl: string;
  log: FastifyBaseLogger;
}

export interface GatewayReply {
  readonly raw: ServerResponse;
  /** The status the response has (or will have, until its head is written). */
  readonly statusCode: number;
  /** Milliseconds since the request arrived (to the response's end, once it ended). */
  readonly elapsedTime: number;
  header(name: string, value: unknown): this;
  headers(values: OutgoingHttpHeaders): this;
  getHeaders(): Record<string, number | string | string[] | undefined>;
  code(status: number): this;
  type(contentType: string): this;
  /** Sends `payload` (a string as it is, anything else as JSON) through the reply's send path. */
  send(payload?: unknown): this;
  /** The route writes the response on `raw` itself (streams). */
  hijack(): this;
}
