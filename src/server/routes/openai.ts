/**
 * The OpenAI-compatible API: chat completions (JSON and SSE), embeddings, models.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type GatewayError, openAIErrorBody, toGatewayError } from '../../core/errors.ts';
import type { ChatCompletionChunk, ChatRequest, Usage } from '../../core/types.ts';
import {
  ClientClosedError,
  type DispatchOptions,
  type DispatchReport,
  dispatchChat,
  dispatchChatStream,
  dispatchEmbeddings,
  newDispatchReport,
} from '../../pipeline/dispatch.ts';
import { type ModelRoute, resolveModel, visibleModels } from '../../pipeline/models.ts';
import { estimateCompletionTokens, estimatePromptTokens } from '../../pipeline/usage-estimate.ts';
import { UsageRecorder } from '../../pipeline/usage-recorder.ts';
import { validateChatRequest, validateEmbeddingRequest } from '../../pipeline/validate.ts';
import { requireKey } from '../auth.ts';
import type { GatewayContext } from '../context.ts';
import { SseWriter } from '../sse-writer.ts';

/**
 * Starts accounting for a model request: its UsageRecorder (ledger rows and
 * metrics) and an abort signal that fires when the client goes away before
 * the answer is complete (so the upstream call is cancelled and nobody pays
 * for tokens no one reads).
 */
function beginModelRequest(
  gw: GatewayContext,
  request: FastifyRequest,
  reply: FastifyReply,
  route: ModelRoute,
  info: { route: string; model: string; stream: boolean },
): DispatchOptions & { report: DispatchReport } {
  const key = request.key!;
  const recorder = new UsageRecorder(gw.ledger, gw.metrics, {
    requestId: request.id,
    keyId: key.isMaster ? null : key.id,
    route: info.route,
    modelRequested: info.model,
    stream: info.stream,
  });
  request.usage = recorder;
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new ClientClosedError());
  });
  return {
    signal: controller.signal,
    requestId: request.id,
    recorder,
    // The router (when configured) reorders these per request.
    targets: route.targets,
    resilience: gw.resilience,
    report: newDispatchReport(),
  };
}

/** Which target served, how many attempts it took, and why it fell back (if it did). */
function dispatchHeaders(report: DispatchReport): Record<string, string> {
  const headers: Record<string, string> = { 'x-switchyard-attempts': String(report.attempts) };
  if (report.target !== undefined) headers['x-switchyard-target'] = report.target;
  if (report.fallbackReason !== undefined) headers['x-switchyard-fallback-reason'] = report.fallbackReason;
  return headers;
}

/** Request-level metrics for a model request that failed before any answer. */
function finishFailed(
  reply: FastifyReply,
  dispatch: { recorder: UsageRecorder; report: DispatchReport },
  error: unknown,
): never {
  reply.headers(dispatchHeaders(dispatch.report));
  dispatch.recorder.finish(error instanceof ClientClosedError ? 499 : toGatewayError(error).status);
  throw error;
}

export function registerOpenAIRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const onRequest = requireKey(gw.keys);

  app.post('/v1/chat/completions', { onRequest }, async (request, reply) => {
    const body = validateChatRequest(request.body);
    const route = resolveModel(gw.models, body.model, request.key!);
    const dispatch = {
      ...beginModelRequest(gw, request, reply, route, {
        route: '/v1/chat/completions',
        model: body.model,
        stream: body.stream === true,
      }),
      estimatePromptTokens: () => estimatePromptTokens(body),
    };
    if (body.stream === true) return streamChat(request, reply, gw, body, route, dispatch);
    try {
      const { completion, attempt } = await dispatchChat(route, body, dispatch);
      attempt.end({
        status: 'ok',
        httpStatus: 200,
        usage: completion.usage,
        usageSource: completion.usage ? 'upstream' : 'none',
      });
      // Clients see the model name they asked for, as with any OpenAI endpoint.
      completion.model = body.model;
      reply.header('x-switchyard-provider', attempt.provider);
      reply.headers(dispatchHeaders(dispatch.report));
      dispatch.recorder.finish(200);
      return completion;
    } catch (error) {
      finishFailed(reply, dispatch, error);
    }
  });

  app.post('/v1/embeddings', { onRequest }, async (request, reply) => {
    const body = validateEmbeddingRequest(request.body);
    const route = resolveModel(gw.models, body.model, request.key!);
    const dispatch = beginModelRequest(gw, request, reply, route, {
      route: '/v1/embeddings',
      model: body.model,
      stream: false,
    });
    try {
      const { response, attempt } = await dispatchEmbeddings(route, body, dispatch);
      const usage: Usage = {
        prompt_tokens: response.usage?.prompt_tokens ?? 0,
        completion_tokens: 0,
        total_tokens: response.usage?.total_tokens ?? 0,
      };
      attempt.end({
        status: 'ok',
        httpStatus: 200,
        usage,
        usageSource: response.usage ? 'upstream' : 'none',
      });
      response.model = body.model;
      reply.header('x-switchyard-provider', attempt.provider);
      reply.headers(dispatchHeaders(dispatch.report));
      dispatch.recorder.finish(200);
      return response;
    } catch (error) {
      finishFailed(reply, dispatch, error);
    }
  });

  app.get('/v1/models', { onRequest }, async (request) => ({
    object: 'list',
    data: visibleModels(gw.models, request.key!).map((r) => ({
      id: r.name,
      object: 'model',
      created: r.created,
      owned_by: 'switchyard',
    })),
  }));

  // Model ids may contain '/', so the id is the rest of the path.
  app.get('/v1/models/*', { onRequest }, async (request) => {
    // The router has already decoded the path once; decoding again would misread '%'.
    const id = (request.params as { '*': string })['*'];
    const route = resolveModel(gw.models, id, request.key!);
    return { id: route.name, object: 'model', created: route.created, owned_by: 'switchyard' };
  });
}

type StreamDispatch = DispatchOptions & { estimatePromptTokens: () => number; report: DispatchReport };

async function streamChat(
  request: FastifyRequest,
  reply: FastifyReply,
  gw: GatewayContext,
  body: ChatRequest,
  route: ModelRoute,
  dispatch: StreamDispatch,
): Promise<void> {
  const { recorder } = dispatch;
  let start: Awaited<ReturnType<typeof dispatchChatStream>>;
  try {
    start = await dispatchChatStream(route, body, dispatch);
  } catch (error) {
    // Nothing was sent yet: the client gets a normal JSON error with its status.
    finishFailed(reply, dispatch, error);
  }
  const { attempt, rest } = start;
  const clientWantsUsage = body.stream_options?.include_usage === true;
  reply.hijack();
  const writer = new SseWriter(reply.raw, gw.config.server.heartbeat_ms);
  writer.start({
    'x-request-id': request.id,
    'x-switchyard-provider': attempt.provider,
    ...dispatchHeaders(dispatch.report),
  });

  let usage: Usage | undefined;
  let contentChunks = 0;
  let contentChars = 0;
  let failure: GatewayError | undefined;
  let chunk: ChatCompletionChunk | undefined = start.first;
  try {
    while (chunk !== undefined) {
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        const content = choice.delta.content;
        if (typeof content === 'string' && content.length > 0) {
          contentChunks++;
          contentChars += content.length;
          attempt.markFirstToken();
        } else if (choice.delta.tool_calls) {
          contentChunks++;
          attempt.markFirstToken();
        }
      }
      chunk.model = body.model;
      // Usage is always requested upstream (for billing); relay it only if the client asked.
      const usageOnly = chunk.choices.length === 0 && chunk.usage;
      if (!usageOnly || clientWantsUsage) {
        if (!clientWantsUsage && chunk.usage !== undefined) delete chunk.usage;
        if (!(await writer.data(JSON.stringify(chunk)))) break;
      }
      const next = await rest.next();
      chunk = next.done ? undefined : next.value;
    }
  } catch (error) {
    if (!(error instanceof ClientClosedError) && !dispatch.signal.aborted) failure = toGatewayError(error);
  }

  const clientGone = dispatch.signal.aborted || writer.closed;
  if (clientGone) await rest.return?.().catch(() => undefined);
  const usageSource = usage ? 'upstream' : 'estimated';
  const billed: Usage = usage ?? {
    prompt_tokens: dispatch.estimatePromptTokens(),
    completion_tokens: estimateCompletionTokens(contentChunks, contentChars),
    total_tokens: 0,
  };
  if (!usage) billed.total_tokens = billed.prompt_tokens + billed.completion_tokens;

  if (failure) {
    // The status is already 200: report the failure in-stream, as OpenAI does.
    await writer.data(JSON.stringify(openAIErrorBody(failure)));
    writer.end();
    attempt.end({
      status: failure.code === 'upstream_timeout' ? 'timeout' : 'error',
      httpStatus: failure.status,
      errorCode: failure.code,
      usage: billed,
      usageSource,
    });
    request.log.warn({ code: failure.code }, 'stream failed after start');
    recorder.finish(failure.status);
    return;
  }
  if (clientGone) {
    writer.end();
    attempt.end({
      status: 'client_closed',
      httpStatus: 499,
      errorCode: 'client_closed',
      usage: billed,
      usageSource,
    });
    recorder.finish(499);
    return;
  }
  await writer.data('[DONE]');
  writer.end();
  attempt.end({ status: 'ok', httpStatus: 200, usage: billed, usageSource });
  recorder.finish(200);
}
