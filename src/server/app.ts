/**
 * Fastify assembly: server options that matter for safety, request ids,
 * one error renderer, and the routes.
 */

import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify';
import { GatewayError, openAIErrorBody, toGatewayError } from '../core/errors.ts';
import { RequestLogger } from '../observability/request-logger.ts';
import type { TraceSpan } from '../observability/tracing.ts';
import { printable } from '../util/printable.ts';
import type { GatewayContext } from './context.ts';
import { registerJsonBodyParser } from './json-body.ts';
import { modelLane } from './lane/model-lane.ts';
import {
  answerError,
  openRequest,
  requestFinishedBy,
  requestIdOf,
  whenSendable,
} from './request-lifecycle.ts';
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
const { createServer, STATUS_CODES } = createRequire(import.meta.url)(
  'node:http',
) as typeof import('node:http');

const KEEP_ALIVE_TIMEOUT_MS = 72_000;
const REQUEST_TIMEOUT_MS = 120_000;

declare module 'fastify' {
  interface FastifyRequest {
    /** The route's URL pattern (`unmatched` for none): the request's metric label and log member. */
    routeUrl: string;
  }
}

/** Fastify's own errors (body parsing, limits) in our error model. */
function fromFastifyError(error: Error): GatewayError {
  const { code, statusCode } = error as Partial<FastifyError>;
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GatewayError('request_too_large', 'Request body is larger than the configured limit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GatewayError('unsupported_media_type', 'Content-Type must be application/json');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GatewayError('invalid_request', 'Content-Length does not match the body');
    default:
      break;
  }
  if (error instanceof SyntaxError || code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new GatewayError('invalid_request', 'Request body is not valid JSON', { param: 'body' });
  }
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    // e.g. prototype-poisoning refusals from the JSON parser.
    return new GatewayError('invalid_request', error.message.slice(0, 200), { status: statusCode });
  }
  return toGatewayError(error);
}

export function buildApp(gw: GatewayContext): FastifyInstance {
  const lane = modelLane(gw);
  const app = Fastify({
    // Node's server as Fastify would make it, with the model lane (lane/model-lane.ts) first in line.
    serverFactory: (handler) => {
      const server = createServer(
        { headersTimeout: gw.config.server.headers_timeout_ms, requestTimeout: REQUEST_TIMEOUT_MS },
        (req, res) => {
          if (!lane(req, res)) handler(req, res);
        },
      );
      server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
      return server;
    },
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
    openRequest(gw, request, reply, request.routeOptions.url ?? 'unmatched');
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
    answerError(gw, request, reply, error, fromFastifyError, request.routeOptions.config?.renderError);
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

  app.addHook('onSend', (request, _reply, payload, done) => {
    whenSendable(request, () => done(null, payload));
  });
  const requestFinished = requestFinishedBy(gw);
  app.addHook('onResponse', (request, reply, done) => {
    requestFinished(request, reply);
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
