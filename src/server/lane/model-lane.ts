/**
 * The model lane: POST /v1/chat/completions, the route nearly all of a
 * gateway's traffic takes, served straight from Node's request event instead
 * of through Fastify's router, hook runner, body parser and reply pipeline.
 * The work is the same, and done by the same code: the request's start and
 * end (request-lifecycle.ts), the key check (auth.ts), the body parser
 * (json-body.ts) and the route itself (routes/openai.ts), on a request and
 * reply that behave as Fastify's do (lane-exchange.ts).
 *
 * It takes only the plain request: the exact path, a JSON body of a stated
 * length within the limit, while the gateway is not draining. Anything else
 * (a query string, another content type, a chunked body, an oversized one)
 * is left to Fastify, which answers it, refusals included, as it always has:
 * the lane never has to agree with Fastify on an edge, only on the common case.
 *
 * Why: at a few hundred requests a second, with caches cold between
 * requests, Fastify's per-request machinery cost the gateway 0.13-0.32 ms of
 * latency over a bare Node server doing the same work. Measured with the lane
 * (bench/paired-ab.sh, the builds interleaved at 200 requests a second): the
 * median over the pass-through fell in every one of 8 rounds, by 0.03-0.27 ms,
 * and stream first byte in 3 rounds of 3 (bench of 1,000 streams a round).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import type { Logger } from 'pino';
import { toGatewayError } from '../../core/errors.ts';
import { RequestLogger } from '../../observability/request-logger.ts';
import { requireKey } from '../auth.ts';
import type { GatewayContext } from '../context.ts';
import { parseJsonBody } from '../json-body.ts';
import {
  answerError,
  openRequest,
  requestFinishedBy,
  requestIdOf,
  whenSendable,
} from '../request-lifecycle.ts';
import { chatCompletions } from '../routes/openai.ts';
import { LaneReply, LaneRequest } from './lane-exchange.ts';

const ROUTE = '/v1/chat/completions';

/** Serves `req` and returns true when it is the lane's to serve; false leaves it to Fastify. */
export type ModelLane = (req: IncomingMessage, res: ServerResponse) => boolean;

export function modelLane(gw: GatewayContext): ModelLane {
  const bodyLimit = gw.config.server.body_limit_bytes;
  const authenticate = requireKey(gw.keys);
  const route = chatCompletions(gw);
  const requestFinished = requestFinishedBy(gw);
  const parent = gw.logger as Logger;

  const fail = (request: LaneRequest, reply: LaneReply, error: unknown): void => {
    if (!reply.settled && !reply.raw.headersSent) {
      try {
        answerError(gw, request, reply, error as Error, toGatewayError);
        return;
      } catch (failure) {
        error = failure;
      }
    }
    // The route took the response over or answered, and then threw; or the error could not be
    // answered: nothing more can be told to the client, whose connection is closed.
    request.log.error({ err: error }, 'unhandled error');
    reply.raw.destroy();
  };

  const run = (request: LaneRequest, reply: LaneReply): void => {
    route(request, reply)
      .then((payload) => {
        if (reply.settled) return;
        if (payload === undefined) throw new Error('the route returned no answer');
        reply.send(payload);
      })
      .catch((error: unknown) => fail(request, reply, error));
  };

  const readBody = (request: LaneRequest, reply: LaneReply): void => {
    const req = request.raw;
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      text += chunk;
    });
    req.on('end', () => {
      try {
        const parsed = parseJsonBody(text);
        request.body = parsed.value;
        request.bodyText = parsed.text;
      } catch (error) {
        fail(request, reply, error);
        return;
      }
      run(request, reply);
    });
    // A body cut short: the client is gone, and the response's 'close' ends the request.
    req.on('error', () => reply.raw.destroy());
  };

  return (req, res) => {
    if (req.url !== ROUTE || req.method !== 'POST' || gw.state.draining || !isPlainJsonBody(req, bodyLimit)) {
      return false;
    }
    const startedAt = performance.now();
    const id = requestIdOf(req, gw.keys);
    const request = new LaneRequest(
      id,
      req,
      new RequestLogger(parent, { requestId: id }) as unknown as FastifyBaseLogger,
    );
    const reply = new LaneReply(res, startedAt, (sending, payload) =>
      whenSendable(request, () => write(request, sending, payload)),
    );
    openRequest(gw, request, reply, ROUTE);
    res.on('finish', () => {
      reply.ended();
      requestFinished(request, reply);
    });
    authenticate(request, reply, (error) => {
      if (error === undefined) readBody(request, reply);
      else fail(request, reply, error);
    });
    return true;
  };
}

/** A JSON body of a stated, non-zero length within the limit, not chunked: what the lane reads itself. */
function isPlainJsonBody(req: IncomingMessage, bodyLimit: number): boolean {
  const headers = req.headers;
  const type = headers['content-type'];
  if (type === undefined || !PLAIN_JSON.has(type.toLowerCase())) return false;
  if (headers['transfer-encoding'] !== undefined) return false;
  const length = headers['content-length'];
  if (length === undefined || !DIGITS.test(length)) return false;
  const bytes = Number(length);
  return bytes > 0 && bytes <= bodyLimit;
}

const PLAIN_JSON: ReadonlySet<string> = new Set(['application/json', 'application/json; charset=utf-8']);
const DIGITS = /^\d{1,15}$/;

/**
 * Head and body in one write, as Fastify writes a reply: its headers, the
 * length, the text. Called back by the ledger once the answer may leave: a
 * header Node refuses is this request's failure, never the ledger's.
 */
function write(request: LaneRequest, reply: LaneReply, payload: string | undefined): void {
  const res = reply.raw;
  const headers = reply.headersToWrite;
  headers['content-length'] = payload === undefined ? '0' : String(Buffer.byteLength(payload));
  try {
    res.writeHead(res.statusCode, headers);
  } catch (error) {
    request.log.error({ err: error }, 'unhandled error');
    res.destroy();
    return;
  }
  res.end(payload);
}
