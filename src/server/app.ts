/**
 * Fastify assembly: server options that matter for safety, request ids,
 * one error renderer, and the routes.
 */

import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify';
import { toOpenAIError } from '../api/openai/openai-inbound-error.ts';
import type { KeyStore } from '../auth/key-store.ts';
import { ClientClosedError, GatewayError, openAIErrorBody, toGatewayError } from '../core/errors.ts';
import { RequestLogger } from '../observability/request-logger.ts';
import type { TraceSpan } from '../observability/tracing.ts';
import { printable } from '../util/printable.ts';
import { requestId } from '../util/request-id.ts';
import type { GatewayContext } from './context.ts';
import { INTERNAL_REQUEST_ID_HEADER } from './internal-requests.ts';
import { registerJsonBodyParser } from './json-body.ts';
import { LimitRefusal } from './request-limits.ts';
import { requestLogger } from './request-log.ts';
import { endRequestTrace, startRequestTrace } from './request-trace.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerAdminAuditRoutes } from './routes/admin-audit.ts';
import { registerAdminTargetRoutes } from './routes/admin-targets.ts';
import { registerAdminTeamRoutes } from './routes/admin-teams.ts';
import { registerAdminUsageRoutes } from './routes/admin-usage.ts';
import { registerAnthropicRoutes } from './routes/anthropic.ts';
import { registerBatchRoutes } from './routes/batches.ts';
import { registerDashboardRoutes } from './routes/dashboard.ts';
import { registerFileRoutes } from './routes/files.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerJobRoutes } from './routes/jobs.ts';
import { registerMetricsRoute } from './routes/metrics.ts';
import { registerOpenAIRoutes } from './routes/openai.ts';
import { registerResponsesRoutes } from './routes/responses.ts';

// Through require, not `import { STATUS_CODES } from 'node:http'`: an ESM import
// of node:http builds a facade that reads every export, and its lazy WebSocket
// getters load Node's own bundled undici (fetch, WebSocket: ~8 MB of RSS and
// 3 MB of heap a gateway process never uses).
const { STATUS_CODES } = createRequire(import.meta.url)('node:http') as typeof import('node:http');

declare module 'fastify' {
  interface FastifyRequest {
    /** The route's URL pattern (`unmatched` for none): the request's metric label and log member. */
    routeUrl: string;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Honours a sane client `x-request-id`; anything else (CRLF, huge) is replaced.
 * A request the gateway sends itself (internal-requests.ts) names its own id.
 */
function requestIdOf(req: IncomingMessage, keys: KeyStore): string {
  const internal = req.headers[INTERNAL_REQUEST_ID_HEADER];
  if (typeof internal === 'string' && REQUEST_ID.test(internal)) {
    const authorization = req.headers.authorization;
    if (authorization !== undefined && keys.isInternal(authorization.slice(7))) return internal;
  }
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : requestId();
}

/** Fastify's own errors (body parsing, limits) in our error model. */
function fromFastifyError(error: FastifyError): GatewayError {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GatewayError('request_too_large', 'Request body is larger than the configured limit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GatewayError('unsupported_media_type', 'Content-Type must be application/json');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GatewayError('invalid_request', 'Content-Length does not match the body');
    default:
      break;
  }
  if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new GatewayError('invalid_request', 'Request body is not valid JSON', { param: 'body' });
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    // e.g. prototype-poisoning refusals from the JSON parser.
    return new GatewayError('invalid_request', error.message.slice(0, 200), { status: error.statusCode });
  }
  return toGatewayError(error);
}

export function buildApp(gw: GatewayContext): FastifyInstance {
  const app = Fastify({
    loggerInstance: gw.logger as FastifyBaseLogger,
    // We write one access line per request ourselves (onResponse), not Fastify's two.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: (req) => requestIdOf(req, gw.keys),
    // The request's pino child is made only if something logs through it (request-logger.ts).
    childLoggerFactory: RequestLogger.factory,
    requestIdHeader: false,
    bodyLimit: gw.config.server.body_limit_bytes,
    // Our own JSON parser (json-body.ts) refuses `__proto__` / `constructor.prototype`
    // keys and deep nesting; these stay as a second line for any other parser.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Requests that arrive while draining are refused by our hook below, in the route's error shape.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    keepAliveTimeout: 72_000,
    requestTimeout: 120_000,
    http: { headersTimeout: gw.config.server.headers_timeout_ms },
    routerOptions: { ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, caseSensitive: true },
    // Errors before routing (a malformed URL) still answer in OpenAI's shape.
    frameworkErrors: (error, _request, reply) => {
      const status = typeof error.statusCode === 'number' && error.statusCode < 500 ? error.statusCode : 400;
      (reply as FastifyReply)
        .code(status)
        .send(openAIErrorBody(new GatewayError('invalid_request', 'Malformed request URL', { status })));
    },
    // Errors Node's HTTP parser raises (oversized headers, bad bytes) before Fastify sees a request.
    clientErrorHandler: writeClientError,
  });

  registerJsonBodyParser(app);
  app.decorateRequest('key', null);
  app.decorateRequest('usage', null);
  // Set by the first hook (request-trace.ts), before anything reads it.
  app.decorateRequest('trace', null as unknown as TraceSpan);
  // Set by the first hook: Fastify's `routeOptions` builds a new object at every read.
  app.decorateRequest('routeUrl', 'unmatched');

  // Hooks take a callback (no promise and tick per request, as async hooks cost).
  app.addHook('onRequest', (request, reply, done) => {
    // In flight from here until the response is finished or the connection
    // closes first (a client abort, streams included): Node emits 'close' on
    // the response exactly once in either case (so `on`, without `once`'s
    // wrapper), and this is the first hook, run in the tick the request
    // arrived, so the socket cannot have closed unseen.
    const route = request.routeOptions.url ?? 'unmatched';
    request.routeUrl = route;
    gw.metrics.requestStarted(route);
    startRequestTrace(gw.tracing, request, route);
    reply.raw.on('close', () => {
      gw.metrics.requestEnded(route);
      endRequestTrace(request, reply);
    });
    reply.header('x-request-id', request.id);
    // A request that reaches us on a kept-alive connection while we drain is
    // refused in its API's shape; health and metrics keep answering.
    if (
      gw.state.draining &&
      request.routeOptions.config?.servesWhileDraining !== true &&
      // A job's request, sent by a worker finishing its work before the process stops.
      !gw.keys.isInternal(request.headers.authorization?.slice(7) ?? '')
    ) {
      reply.header('connection', 'close');
      done(new GatewayError('shutting_down', 'The gateway is shutting down; retry the request'));
      return;
    }
    done();
  });

  app.setErrorHandler((error: FastifyError | GatewayError, request, reply) => {
    if (error instanceof ClientClosedError) {
      // Nobody is listening any more; the ledger already has the row.
      reply.code(499).send();
      return;
    }
    const gatewayError = GatewayError.is(error) ? error : fromFastifyError(error as FastifyError);
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
    const render = request.routeOptions.config?.renderError ?? toOpenAIError;
    const rendered = render(gatewayError, request.id);
    reply.code(rendered.status).send(rendered.body);
  });

  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .send(
        openAIErrorBody(
          new GatewayError('not_found', `No route for ${request.method} ${safePath(request.url)}`),
        ),
      );
  });

  // A model request's answer leaves once its usage rows are on disk (the
  // ledger spool writes a turn's rows together at the turn's end), so a
  // client that has its answer has its bill survive a kill -9.
  app.addHook('onSend', (request, _reply, payload, done) => {
    if (request.usage === null) done(null, payload);
    // Through the recorder: the wait is the request's `ledger write` span when traced.
    else request.usage.whenDurable(() => done(null, payload));
  });

  // Request log line (request-log.ts, with the trace id when traced) and, for
  // requests no UsageRecorder accounted for (early errors, health, admin), the request metrics.
  const logRequest = requestLogger(
    { sampleRate: gw.config.logging.sample_rate },
    (request) => request.trace.traceId || undefined,
  );
  app.addHook('onResponse', (request, reply, done) => {
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
    done();
  });

  registerOpenAIRoutes(app, gw);
  registerAnthropicRoutes(app, gw);
  registerResponsesRoutes(app, gw);
  registerAdminRoutes(app, gw);
  registerAdminTargetRoutes(app, gw);
  registerAdminUsageRoutes(app, gw);
  registerAdminTeamRoutes(app, gw);
  registerHealthRoutes(app, gw);
  // With `server.metrics_port` set, /metrics is served there (metrics-server.ts), not here.
  if (gw.config.server.metrics_port === undefined) registerMetricsRoute(app, gw);
  registerAdminAuditRoutes(app, gw);
  registerJobRoutes(app, gw);
  registerBatchRoutes(app, gw);
  registerDashboardRoutes(app, gw);
  void app.register(async (scope) => registerFileRoutes(scope, gw));
  return app;
}

function writeClientError(error: { code?: string }, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const status =
    error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const message =
    status === 431
      ? 'Request headers are too large'
      : status === 408
        ? 'Request timed out'
        : 'Malformed HTTP request';
  const body = JSON.stringify(openAIErrorBody(new GatewayError('invalid_request', message, { status })));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function safePath(url: string): string {
  return printable(url.split('?')[0] ?? '', 100, { spaces: false });
}
