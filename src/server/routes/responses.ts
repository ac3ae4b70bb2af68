/**
 * The OpenAI Responses API: `POST /v1/responses` (JSON and SSE), and the
 * stored responses: `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}`,
 * `GET /v1/responses/{id}/input_items`. Served by any provider: the request
 * is translated into the canonical Chat Completions shape (src/api/responses/)
 * and goes through the same pipeline as `/v1/chat/completions` (limits and
 * budgets, routing, resilience, the ledger); the answer or stream is
 * translated back. Errors answer in OpenAI's shape.
 *
 * State lives in the SQL store (src/store/responses-repo.ts), scoped to the
 * key that created it. `previous_response_id` prepends the chain's items
 * (provider-neutral) as history, so a conversation begun on one provider can
 * go on on another. The response cache does not serve this route: every
 * response is a new object with its own id, and may be stored and continued.
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { listPage } from '../../api/openai/list-page.ts';
import { newResponseId } from '../../api/responses/responses-ids.ts';
import { inputItems, toChatRequest } from '../../api/responses/responses-inbound-request.ts';
import { responseShell, toResponseObject } from '../../api/responses/responses-inbound-response.ts';
import { encodeResponseEvent, ResponsesStreamEncoder } from '../../api/responses/responses-inbound-stream.ts';
import { RESPONSE_ID, validateResponsesRequest } from '../../api/responses/responses-validate.ts';
import type { InputItem, ResponseObject, ResponsesRequest } from '../../api/responses/responses-wire.ts';
import { StreamTally } from '../../billing/stream-tally.ts';
import { GatewayError } from '../../core/errors.ts';
import { estimatePromptTokens, maxOutputTokens } from '../../core/token-estimate.ts';
import type { ChatRequest } from '../../core/types.ts';
import { dispatchChat, dispatchChatStream, type StreamStart } from '../../dispatch/dispatch.ts';
import { type ModelRoute, resolveModel } from '../../routing/model-table.ts';
import { ResponsesRepo } from '../../store/responses-repo.ts';
import { requireKey } from '../auth.ts';
import type { GatewayContext } from '../context.ts';
import { type Sent, SseWriter } from '../sse-writer.ts';
import { listQuery, ownerOf } from './job-routes-shared.ts';
import {
  beginModelRequest,
  CACHE_HEADER,
  type ChatDispatch,
  finishFailed,
  finishOk,
  prepareRouting,
  relayStream,
  streamHeaders,
} from './model-request.ts';

const ROUTE = '/v1/responses';

/** What a new response continues: the chain's items and ids (to renew their retention). */
interface History {
  items: InputItem[];
  chainIds: string[];
}

export function registerResponsesRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const onRequest = requireKey(gw.keys);
  const repo = new ResponsesRepo(gw.database, {
    retentionMs: gw.config.responses.retention_days * 86_400_000,
    onSweepError: (error) => gw.logger.warn({ err: error }, 'responses: sweeping expired responses failed'),
  });
  // A sweep in flight finishes before the database closes.
  app.addHook('onClose', async () => repo.idle());

  app.post(ROUTE, { onRequest }, async (request, reply) => {
    const body = validateResponsesRequest(request.body);
    const route = resolveModel(gw.models, body.model, request.key!);
    const history = await loadHistory(repo, ownerOf(request), body.previous_response_id);
    const input = inputItems(body.input);
    const chat = toChatRequest(body, history.items, input);
    const limited = gw.limits.admit(
      request,
      reply,
      route,
      () => ({ prompt: estimatePromptTokens(chat), output: maxOutputTokens(chat) }),
      chat.user,
    );
    if (limited !== undefined) await limited;
    const preparing = prepareRouting(gw, request, reply, route, chat);
    if (preparing !== undefined) await preparing;
    const dispatch = beginModelRequest(gw, request, reply, route, chat, {
      route: ROUTE,
      stream: body.stream === true,
      estimatePromptTokens: () => estimatePromptTokens(chat),
    });
    reply.header(CACHE_HEADER, dispatch.recorder.cacheStatus);
    const shell = responseShell(body, { id: newResponseId(), createdAt: Date.now() });
    const keep = (response: ResponseObject): Promise<void> =>
      storeResponse(repo, request, body, input, history, response);
    if (body.stream === true) return streamResponse(request, reply, gw, chat, route, dispatch, shell, keep);
    try {
      const { completion, attempt } = await dispatchChat(route, chat, dispatch);
      attempt.ok(completion.usage);
      const response = toResponseObject(completion, shell);
      await keep(response);
      finishOk(reply, dispatch, attempt);
      return response;
    } catch (error) {
      finishFailed(reply, dispatch, error);
    }
  });

  app.get(`${ROUTE}/:id`, { onRequest }, async (request) => {
    const stored = await repo.get(ownerOf(request), responseIdOf(request));
    if (stored === undefined) throw notFound(responseIdOf(request));
    return stored.response;
  });

  app.delete(`${ROUTE}/:id`, { onRequest }, async (request) => {
    const id = responseIdOf(request);
    if (!(await repo.delete(ownerOf(request), id))) throw notFound(id);
    return { id, object: 'response', deleted: true };
  });

  app.get(`${ROUTE}/:id/input_items`, { onRequest }, async (request) => {
    const id = responseIdOf(request);
    const { after, limit } = listQuery(request.query);
    const order = (request.query as Record<string, unknown>)['order'] ?? 'desc';
    if (order !== 'asc' && order !== 'desc') {
      throw new GatewayError('invalid_request', "order must be 'asc' or 'desc'", { param: 'order' });
    }
    const stored = await repo.get(ownerOf(request), id);
    if (stored === undefined) throw notFound(id);
    const items = stored.inputItems as Array<{ id: string }>;
    if (order === 'desc') items.reverse();
    const start = after === undefined ? 0 : items.findIndex((item) => item.id === after) + 1;
    if (after !== undefined && start === 0) {
      throw new GatewayError('invalid_request', `No input item with id '${after}' in this response`, {
        param: 'after',
      });
    }
    return listPage(items.slice(start, start + limit + 1), limit, (item) => item);
  });
}

function responseIdOf(request: FastifyRequest): string {
  const id = (request.params as { id: string }).id;
  // Not a response id at all: as unknown as any other (and not echoed: it could be anything).
  if (!RESPONSE_ID.test(id)) throw new GatewayError('not_found', 'No response with that id.');
  return id;
}

/** OpenAI's answer for an id that is unknown, expired, deleted or another key's: they are not told apart. */
function notFound(id: string, param?: string): GatewayError {
  return new GatewayError('not_found', `Response with id '${id}' not found.`, param ? { param } : {});
}

async function loadHistory(
  repo: ResponsesRepo,
  keyId: string,
  previous: string | null | undefined,
): Promise<History> {
  if (previous === undefined || previous === null) return { items: [], chainIds: [] };
  const chain = await repo.chain(keyId, previous);
  if (!chain.found) {
    throw chain.missing === previous
      ? notFound(previous, 'previous_response_id')
      : new GatewayError(
          'not_found',
          `Response '${previous}' continues '${chain.missing}', which was deleted or has expired.`,
          { param: 'previous_response_id' },
        );
  }
  return {
    items: chain.turns.flatMap((turn) => [...turn.inputItems, ...turn.outputItems] as InputItem[]),
    chainIds: chain.turns.map((turn) => turn.id),
  };
}

/**
 * Stores a finished response (unless `store: false`) before the client sees
 * it finished, so a retrieve or a continuation right after finds it. A
 * failure to store is logged, not the client's: its answer was produced
 * (and billed); only its continuation is lost.
 */
async function storeResponse(
  repo: ResponsesRepo,
  request: FastifyRequest,
  body: ResponsesRequest,
  input: InputItem[],
  history: History,
  response: ResponseObject,
): Promise<void> {
  if (body.store === false) return;
  try {
    await repo.save(
      {
        id: response.id,
        keyId: ownerOf(request),
        previousResponseId: body.previous_response_id ?? null,
        model: body.model,
        inputItems: input,
        outputItems: response.output,
        response: response as unknown as Record<string, unknown>,
        createdAt: response.created_at * 1000,
        expiresAt: repo.expiryFromNow(),
      },
      history.chainIds,
    );
  } catch (error) {
    request.log.error({ err: error, responseId: response.id }, 'responses: storing the response failed');
  }
}

async function streamResponse(
  request: FastifyRequest,
  reply: FastifyReply,
  gw: GatewayContext,
  chat: ChatRequest,
  route: ModelRoute,
  dispatch: ChatDispatch,
  shell: ResponseObject,
  keep: (response: ResponseObject) => Promise<void>,
): Promise<void> {
  let start: StreamStart;
  try {
    start = await dispatchChatStream(route, chat, dispatch);
  } catch (error) {
    // Nothing was sent yet: the client gets a normal JSON error with its status.
    finishFailed(reply, dispatch, error);
  }
  reply.hijack();
  const writer = new SseWriter(reply.raw, gw.config.server.heartbeat_ms);
  writer.start(streamHeaders(reply, dispatch, start.attempt));
  const encoder = new ResponsesStreamEncoder(shell);
  const tally = new StreamTally(start.attempt);
  const send = (events: ReturnType<ResponsesStreamEncoder['push']>): Sent =>
    events.length === 0 ? !writer.closed : writer.frame(events.map(encodeResponseEvent).join(''));
  let ended: Awaited<ReturnType<typeof relayStream>>;
  if (!(await send(encoder.start()))) ended = { failure: undefined, clientGone: true };
  else {
    ended = await relayStream(start, dispatch.signal, writer, (chunk) => {
      tally.observe(chunk);
      return send(encoder.push(chunk));
    });
  }
  if (ended.clientGone) await start.rest.return?.().catch(() => undefined);
  const billed = tally.billed(dispatch.estimatePromptTokens);
  // Billed (its row written now, spooled before the last frames: a client that saw its answer
  // complete has its usage on disk), then stored, then told it is complete.
  const durable = dispatch.recorder.settleStream(start.attempt, ended, billed);
  if (ended.failure) {
    await durable;
    // The status is already 200: the failure is an `error` event, as OpenAI sends it.
    await send(encoder.error(ended.failure));
    request.log.warn({ code: ended.failure.code }, 'stream failed after start');
  } else if (!ended.clientGone) {
    const closing = encoder.finish(billed.usage);
    await keep(encoder.response!);
    await durable;
    await send(closing);
  } else await durable;
  writer.end();
}
