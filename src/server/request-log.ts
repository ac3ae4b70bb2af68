/**
 * The request log line: one JSON line per request, written when the response
 * is done (request-lifecycle.ts, `requestFinishedBy`: Fastify's onResponse hook
 * and the model lane). Besides the request id (pino's `requestId`),
 * method, route, status and latency, a model request says who asked (the key's
 * name and id, never the key), what it asked for and what served it, tokens,
 * cost and what the cache did: what the UsageRecorder knows by then.
 *
 * Sampling (`logging.sample_rate`) drops a share of successful lines only:
 * errors (status ≥ 400) are always written, and audit lines never pass here.
 */
import { stringMember } from '../observability/json-line.ts';
import { writeRequestLine } from '../observability/request-logger.ts';
import type { GatewayReply, GatewayRequest } from './exchange.ts';

export interface RequestLogOptions {
  /** Share of successful lines written, 0–1. */
  sampleRate: number;
}

/**
 * The trace id to put on the line, when tracing is on. Tracing (OpenTelemetry,
 * issue 12 point 3) fills this in: the place for it is here, so every request
 * line carries `traceId` next to `requestId`.
 */
export type TraceIdOf = (request: GatewayRequest) => string | undefined;

export function requestLogger(
  options: RequestLogOptions,
  traceIdOf: TraceIdOf = () => undefined,
): (request: GatewayRequest, reply: GatewayReply) => void {
  const { sampleRate } = options;
  return (request, reply) => {
    const status = reply.statusCode;
    if (status < 400 && sampleRate < 1 && Math.random() >= sampleRate) return;
    const usage = request.usage;
    const key = request.key;
    const traceId = traceIdOf(request);
    // Written as JSON members, in the order and form pino would write them (json-line.ts).
    let line =
      stringMember('method', request.method) +
      stringMember('route', request.routeUrl) +
      `,"status":${status},"ms":${Math.round(reply.elapsedTime * 100) / 100}`;
    if (traceId !== undefined) line += stringMember('traceId', traceId);
    // Who: the key's name and id; the key itself never reaches a log.
    if (key !== null) {
      line += stringMember('keyName', key.name) + stringMember('keyId', key.isMaster ? 'master' : key.id);
    }
    if (usage !== null) {
      const cost = usage.costUsd;
      line +=
        stringMember('model', usage.info.modelRequested) +
        stringMember('provider', usage.lastProvider) +
        `,"attempts":${usage.attempts},"tokens":{"prompt":${usage.promptTokens},"completion":${usage.completionTokens}}` +
        `,"costUsd":${cost === undefined ? null : Number(cost)}` +
        stringMember('cache', usage.cacheStatus) +
        `,"stream":${usage.info.stream}`;
    }
    writeRequestLine(request.log, line, 'request');
  };
}
