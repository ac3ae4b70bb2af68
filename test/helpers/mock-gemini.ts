/**
 * Mock Gemini upstream: a real HTTP server on 127.0.0.1 speaking the Gemini API
 * (generativelanguage v1beta) as documented: `models/{model}:generateContent`,
 * `:streamGenerateContent?alt=sse` (every `data:` a whole GenerateContentResponse,
 * CRLF line endings, `finishReason` and complete `usageMetadata` on the last frame),
 * `:embedContent`, `:batchEmbedContents`, `GET /v1beta/models`, and Google's error
 * envelope `{"error":{"code","message","status","details"}}`.
 *
 * It behaves like the OpenAI mock (mock-upstream.ts), in Gemini's own wire format,
 * so one test can check every provider the same way:
 * - reply `"Echo: " + <last user text>` (a `[mock:...]` directive removed), or
 *   `"Echo: " + <function result text>` after a functionResponse;
 * - with tools declared, a last user turn and mode not NONE: one functionCall to the
 *   first declared (or the only allowed) function, args `{"location":"Paris","unit":"celsius"}`;
 * - promptTokenCount = sum over contents and the system instruction of (words + 3);
 *   candidatesTokenCount = number of content frames (a function call is one frame);
 *   identical for the streaming and the non-streaming answer to the same request;
 * - `maxOutputTokens` below the frame count truncates with finishReason MAX_TOKENS.
 *
 * Faults: the same directives, `enqueue` and `setDefault` as the OpenAI mock (see
 * `parseDirective`), answered in Google's forms (status → google.rpc status name,
 * 429 RESOURCE_EXHAUSTED with RetryInfo, 503 UNAVAILABLE "model is overloaded",
 * `data: {"error":...}` mid-stream), plus two Gemini-only kinds: `safety` (a
 * candidate with finishReason SAFETY and no content) and `promptBlocked`
 * (`promptFeedback.blockReason`, no candidates).
 */
import type { JsonObject } from '../../src/core/types.ts';
import {
  flushWrite,
  MockServer,
  type RecordedExchange,
  type Exchange as ServerExchange,
  sleep,
  splitBuffer,
  writePieces,
} from './mock-server.ts';
import {
  countWords,
  DirectiveError,
  embeddingVector,
  extractDirective,
  type MockBehaviour,
  type ReplyShaping,
  replyPieces,
} from './mock-upstream.ts';

export type GeminiMockBehaviour = (
  | MockBehaviour
  | (ReplyShaping & { kind: 'safety' })
  | (ReplyShaping & { kind: 'promptBlocked' })
) & {
  /** Streams: send `afterFrames` frames, then hold the rest until `release` settles (a test-controlled gate). */
  gate?: { afterFrames: number; release: Promise<unknown> };
};

/** `behaviour`: `ok`, a behaviour kind, `auth` or `invalid`. */
export type GeminiRecordedRequest = RecordedExchange;

export interface MockGeminiOptions {
  frames?: number;
  frameDelayMs?: number;
  /** If set, requests must carry `x-goog-api-key: <requireApiKey>` (Google's 400/403 otherwise). */
  requireApiKey?: string;
  record?: boolean;
}

export interface MockGemini {
  /** `http://127.0.0.1:PORT` (the adapter's base URL: it appends `/v1beta/...`). */
  readonly url: string;
  readonly port: number;
  readonly requests: GeminiRecordedRequest[];
  enqueue(...b: GeminiMockBehaviour[]): void;
  setDefault(b: GeminiMockBehaviour | undefined): void;
  waitForRequests(n: number, timeoutMs?: number): Promise<GeminiRecordedRequest[]>;
  waitForAbort(timeoutMs?: number): Promise<GeminiRecordedRequest>;
  reset(): void;
  close(): Promise<void>;
}

const TOOL_ARGS = { location: 'Paris', unit: 'celsius' };
const EMBEDDING_DIMS = 8;
const JSON_TYPE = 'application/json; charset=UTF-8';
const SSE_TYPE = 'text/event-stream';

// ---------------------------------------------------------------------------------------
// Google's error envelope
// ---------------------------------------------------------------------------------------

const RPC_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'NOT_IMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

function defaultMessage(status: number, model: string): string {
  switch (status) {
    case 400:
      return 'Request contains an invalid argument.';
    case 403:
      return "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.";
    case 404:
      return `models/${model} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.`;
    case 429:
      return 'You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.';
    case 500:
      return 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting';
    case 503:
      return 'The model is overloaded. Please try again later.';
    case 504:
      return 'The request timed out. Please try again.';
    default:
      return `Mock Gemini error (status ${status}).`;
  }
}

export function googleError(
  status: number,
  message: string,
  details?: Array<Record<string, unknown>>,
): string {
  return JSON.stringify({
    error: {
      code: status,
      message,
      status: RPC_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'FAILED_PRECONDITION'),
      ...(details ? { details } : {}),
    },
  });
}

function retryInfo(seconds: number): Array<Record<string, unknown>> {
  return [
    {
      '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
      violations: [
        {
          quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
          quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
        },
      ],
    },
    { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${seconds}s` },
  ];
}

// ---------------------------------------------------------------------------------------
// Request reading
// ---------------------------------------------------------------------------------------

interface Part {
  text?: unknown;
  functionCall?: unknown;
  functionResponse?: { name?: unknown; response?: unknown };
}
interface Content {
  role?: unknown;
  parts?: Part[];
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A function result's text: the `{content}` wrapper's string, else the JSON of the object. */
function responseText(response: unknown): string {
  if (isObject(response)) {
    const keys = Object.keys(response);
    if (keys.length === 1 && typeof response['content'] === 'string') return response['content'];
  }
  return JSON.stringify(response ?? {});
}

/** Text of a content: text parts and function results, joined with a space (as contentText does). */
function partsText(parts: Part[] | undefined): string {
  let out = '';
  for (const part of parts ?? []) {
    let text: string | undefined;
    if (typeof part.text === 'string') text = part.text;
    else if (part.functionResponse) text = responseText(part.functionResponse.response);
    if (text !== undefined) out += (out ? ' ' : '') + text;
  }
  return out;
}

function userText(parts: Part[] | undefined): string {
  let out = '';
  for (const part of parts ?? []) {
    if (typeof part.text === 'string') out += (out ? ' ' : '') + part.text;
  }
  return out;
}

interface Plan {
  responseId: string;
  model: string;
  /** Text pieces (one per frame), or a single function call. */
  pieces: string[];
  call: { name: string; args: JsonObject } | undefined;
  finishReason: 'STOP' | 'MAX_TOKENS';
  promptTokens: number;
}

function planOf(
  seq: number,
  model: string,
  body: JsonObject,
  b: GeminiMockBehaviour,
  rest: string | undefined,
  defaultFrames: number | undefined,
): Plan {
  const contents = (Array.isArray(body['contents']) ? body['contents'] : []) as Content[];
  let promptTokens = 0;
  for (const c of contents) promptTokens += countWords(partsText(c.parts)) + 3;
  const system = body['systemInstruction'] as Content | undefined;
  if (system) promptTokens += countWords(partsText(system.parts)) + 3;
  const last = contents[contents.length - 1];
  const lastIsResult = (last?.parts ?? []).some((p) => p.functionResponse);
  const declarations: Array<{ name?: unknown }> = [];
  for (const tool of Array.isArray(body['tools']) ? (body['tools'] as JsonObject[]) : []) {
    if (Array.isArray(tool['functionDeclarations'])) declarations.push(...tool['functionDeclarations']);
  }
  const calling = isObject(body['toolConfig']) ? body['toolConfig']['functionCallingConfig'] : undefined;
  const mode = isObject(calling) ? calling['mode'] : undefined;
  const allowed = isObject(calling) ? calling['allowedFunctionNames'] : undefined;
  const frames = b.frames ?? defaultFrames;
  let pieces: string[] = [];
  let call: Plan['call'];
  if (declarations.length > 0 && mode !== 'NONE' && last?.role === 'user' && !lastIsResult) {
    const forced = Array.isArray(allowed) && typeof allowed[0] === 'string' ? allowed[0] : undefined;
    call = {
      name: forced ?? String(declarations[0]?.name ?? 'tool'),
      args: b.toolArguments ? (JSON.parse(b.toolArguments) as JsonObject) : TOOL_ARGS,
    };
  } else {
    let text: string;
    if (b.text !== undefined) text = b.text;
    else if (lastIsResult) {
      const results = (last?.parts ?? []).filter((p) => p.functionResponse);
      text = `Echo: ${responseText(results[results.length - 1]?.functionResponse?.response)}`;
    } else {
      let said = rest;
      if (said === undefined) {
        for (let i = contents.length - 1; i >= 0; i--) {
          if (contents[i]?.role === 'user') {
            said = userText(contents[i]?.parts);
            break;
          }
        }
      }
      text = `Echo: ${said ?? ''}`;
    }
    pieces = replyPieces(text, frames, b.text !== undefined);
  }
  let finishReason: Plan['finishReason'] = 'STOP';
  const config = isObject(body['generationConfig']) ? body['generationConfig'] : {};
  const max = config['maxOutputTokens'];
  if (!call && typeof max === 'number' && pieces.length > max) {
    pieces = pieces.slice(0, max);
    finishReason = 'MAX_TOKENS';
  }
  return {
    responseId: b.completionId ?? `mock-gemini-${seq}`,
    model,
    pieces,
    call,
    finishReason,
    promptTokens,
  };
}

// ---------------------------------------------------------------------------------------
// Response bodies
// ---------------------------------------------------------------------------------------

function usageMetadata(plan: Plan, candidates: number | undefined): JsonObject {
  const usage: JsonObject = { promptTokenCount: plan.promptTokens };
  if (candidates !== undefined) usage['candidatesTokenCount'] = candidates;
  usage['totalTokenCount'] = plan.promptTokens + (candidates ?? 0);
  usage['promptTokensDetails'] = [{ modality: 'TEXT', tokenCount: plan.promptTokens }];
  return usage;
}

/** The frames of a stream, each a whole GenerateContentResponse; the last carries finishReason and usage. */
function streamPayloads(plan: Plan): string[] {
  const frame = (parts: JsonObject[], finish: string | undefined, done: boolean): string =>
    JSON.stringify({
      candidates: [
        {
          content: { parts, role: 'model' },
          ...(finish ? { finishReason: finish } : {}),
          index: 0,
        },
      ],
      usageMetadata: usageMetadata(plan, done ? outputTokens(plan) : undefined),
      modelVersion: plan.model,
      responseId: plan.responseId,
    });
  if (plan.call) return [frame([{ functionCall: plan.call }], 'STOP', true)];
  if (plan.pieces.length === 0) return [frame([{ text: '' }], plan.finishReason, true)];
  return plan.pieces.map((piece, i) => {
    const last = i === plan.pieces.length - 1;
    return frame([{ text: piece }], last ? plan.finishReason : undefined, last);
  });
}

function outputTokens(plan: Plan): number {
  return plan.call ? 1 : plan.pieces.length;
}

function responseJson(plan: Plan): string {
  const parts = plan.call ? [{ functionCall: plan.call }] : [{ text: plan.pieces.join('') }];
  return JSON.stringify({
    candidates: [{ content: { parts, role: 'model' }, finishReason: plan.finishReason, index: 0 }],
    usageMetadata: usageMetadata(plan, outputTokens(plan)),
    modelVersion: plan.model,
    responseId: plan.responseId,
  });
}

const SAFETY_RATINGS = [
  { category: 'HARM_CATEGORY_HARASSMENT', probability: 'HIGH', blocked: true },
  { category: 'HARM_CATEGORY_HATE_SPEECH', probability: 'NEGLIGIBLE' },
];

function safetyJson(plan: Plan): string {
  return JSON.stringify({
    candidates: [{ finishReason: 'SAFETY', index: 0, safetyRatings: SAFETY_RATINGS }],
    usageMetadata: usageMetadata(plan, 0),
    modelVersion: plan.model,
    responseId: plan.responseId,
  });
}

function promptBlockedJson(plan: Plan): string {
  return JSON.stringify({
    promptFeedback: { blockReason: 'SAFETY', safetyRatings: SAFETY_RATINGS },
    usageMetadata: { promptTokenCount: plan.promptTokens, totalTokenCount: plan.promptTokens },
    modelVersion: plan.model,
    responseId: plan.responseId,
  });
}

// ---------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------

type Exchange = ServerExchange<GeminiRecordedRequest>;

const ROUTE = /\/models\/([^/:]+):(generateContent|streamGenerateContent|embedContent|batchEmbedContents)$/;

export async function startMockGemini(options: MockGeminiOptions = {}): Promise<MockGemini> {
  const mock = new MockServer<GeminiMockBehaviour, GeminiRecordedRequest>({
    name: 'mock-gemini',
    record: options.record,
    bugResponse: (_ex, message) => ({
      contentType: JSON_TYPE,
      body: googleError(500, `mock-gemini bug: ${message}`),
    }),
  });

  const headersFor = (ex: Exchange, contentType: string, b: ReplyShaping): Record<string, string> => {
    const h: Record<string, string> = { 'content-type': contentType, 'x-request-id': `req_gemini_${ex.seq}` };
    for (const [k, v] of Object.entries(b.headers ?? {})) h[k.toLowerCase()] = v;
    return h;
  };

  const sendBody = async (
    ex: Exchange,
    status: number,
    body: string,
    b: ReplyShaping,
    extra: Record<string, string> = {},
  ): Promise<void> => {
    if (b.slowFirstByteMs && !(await sleep(b.slowFirstByteMs, ex.ac.signal))) return;
    const buf = Buffer.from(body);
    const headers = { ...headersFor(ex, JSON_TYPE, b), ...extra, 'content-length': String(buf.length) };
    ex.res.writeHead(status, headers);
    mock.markHead(ex, status);
    if (!b.delayMs && !b.splitAt) {
      ex.res.end(buf);
      return;
    }
    ex.res.flushHeaders();
    if (b.delayMs && !(await sleep(b.delayMs, ex.ac.signal))) return;
    await writePieces(ex, b.splitAt ? splitBuffer(buf, b.splitAt) : [buf], b.frameDelayMs ?? 0);
  };

  /** Streams SSE events (paced by frameDelayMs, or cut at splitAt byte offsets); `end` finishes the response. */
  const sendEvents = async (
    ex: Exchange,
    events: string[],
    b: GeminiMockBehaviour,
    end: boolean,
  ): Promise<boolean> => {
    if (b.slowFirstByteMs && !(await sleep(b.slowFirstByteMs, ex.ac.signal))) return false;
    ex.res.writeHead(200, headersFor(ex, SSE_TYPE, b));
    mock.markHead(ex, 200);
    ex.res.flushHeaders();
    if (b.gate) {
      const { afterFrames, release } = b.gate;
      await flushWrite(ex.res, events.slice(0, afterFrames).join(''));
      const aborted = new Promise<void>((resolve) => ex.ac.signal.addEventListener('abort', () => resolve()));
      await Promise.race([release, aborted]);
      if (ex.ac.signal.aborted) return false;
      events = events.slice(afterFrames);
    }
    const gap = b.frameDelayMs ?? options.frameDelayMs ?? 0;
    const pieces = b.splitAt
      ? splitBuffer(Buffer.from(events.join('')), b.splitAt)
      : gap > 0
        ? events.map((e) => Buffer.from(e))
        : [Buffer.from(events.join(''))];
    if (end) {
      await writePieces(ex, pieces, gap);
      return !ex.ac.signal.aborted;
    }
    for (let i = 0; i < pieces.length; i++) {
      if (i > 0 && !(await sleep(gap, ex.ac.signal))) return false;
      await flushWrite(ex.res, pieces[i] ?? '');
      if (ex.ac.signal.aborted) return false;
    }
    return true;
  };

  const invalid = (
    ex: Exchange,
    status: number,
    message: string,
    details?: Array<Record<string, unknown>>,
  ) => {
    if (ex.record) ex.record.behaviour = 'invalid';
    return sendBody(ex, status, googleError(status, message, details), {});
  };

  /** Behaviours answered the same whatever the method. Returns true if it answered. */
  const answerGeneric = async (ex: Exchange, b: GeminiMockBehaviour, model: string): Promise<boolean> => {
    switch (b.kind) {
      case 'status': {
        const status = b.status;
        const details = status === 429 ? retryInfo(7) : undefined;
        await sendBody(
          ex,
          status,
          googleError(status, b.error?.message ?? defaultMessage(status, model), details),
          b,
        );
        return true;
      }
      case 'rateLimit': {
        const extra: Record<string, string> = {};
        if (b.retryAfterSeconds !== undefined) extra['retry-after'] = String(b.retryAfterSeconds);
        const body = googleError(
          429,
          b.error?.message ?? defaultMessage(429, model),
          retryInfo(b.retryAfterSeconds ?? 7),
        );
        await sendBody(ex, 429, body, b, extra);
        return true;
      }
      case 'hang':
        return true;
      case 'hangAfterHeaders':
        if (!b.slowFirstByteMs || (await sleep(b.slowFirstByteMs, ex.ac.signal))) {
          ex.res.writeHead(200, headersFor(ex, SSE_TYPE, b));
          mock.markHead(ex, 200);
          ex.res.flushHeaders();
        }
        return true;
      case 'reset':
        await mock.resetBeforeAnswer(ex, b.slowFirstByteMs);
        return true;
      case 'redirect': {
        const location = b.location ?? mock.redirectTarget(ex);
        await sendBody(ex, b.status ?? 307, '', b, { location });
        return true;
      }
      default:
        return false;
    }
  };

  const answerGenerate = async (ex: Exchange, plan: Plan, stream: boolean, b: GeminiMockBehaviour) => {
    const le = b.lineEnding ?? '\r\n';
    const event = (payload: string): string => `data: ${payload}${le}${le}`;
    const payloads =
      b.kind === 'safety'
        ? [safetyJson(plan)]
        : b.kind === 'promptBlocked'
          ? [promptBlockedJson(plan)]
          : streamPayloads(plan);
    const json =
      b.kind === 'safety'
        ? safetyJson(plan)
        : b.kind === 'promptBlocked'
          ? promptBlockedJson(plan)
          : responseJson(plan);
    switch (b.kind) {
      case 'resetMidStream': {
        if (!stream) {
          const buf = Buffer.from(json);
          ex.res.writeHead(200, { ...headersFor(ex, JSON_TYPE, b), 'content-length': String(buf.length) });
          mock.markHead(ex, 200);
          await flushWrite(ex.res, buf.subarray(0, Math.floor(buf.length / 2)));
        } else if (!(await sendEvents(ex, payloads.slice(0, b.afterFrames).map(event), b, false))) return;
        if (!ex.ac.signal.aborted) mock.destroy(ex, b.rst === true);
        return;
      }
      case 'errorInStream': {
        const events = payloads.slice(0, b.afterFrames ?? 1).map(event);
        events.push(event(googleError(500, b.error?.message ?? defaultMessage(500, plan.model))));
        await sendEvents(ex, events, b, true);
        return;
      }
      case 'malformedSse': {
        await sendEvents(ex, malformed(payloads, b.variant ?? 'invalidJson', le), b, true);
        return;
      }
      case 'malformedJson':
        await sendBody(ex, 200, json.slice(0, Math.floor(json.length / 2)), b);
        return;
      default:
        if (stream) await sendEvents(ex, payloads.map(event), b, true);
        else await sendBody(ex, 200, json, b);
    }
  };

  const answerEmbed = async (
    ex: Exchange,
    model: string,
    batch: boolean,
    body: JsonObject,
    b: GeminiMockBehaviour,
  ) => {
    const requestsIn = batch ? body['requests'] : [body];
    if (!Array.isArray(requestsIn) || requestsIn.length === 0) {
      await invalid(ex, 400, '* BatchEmbedContentsRequest.requests: contents is not specified');
      return;
    }
    const vectors: number[][] = [];
    for (const [i, r] of (requestsIn as JsonObject[]).entries()) {
      if (batch && r['model'] !== `models/${model}`) {
        await invalid(
          ex,
          400,
          `Model name in the request (${String(r['model'])}) does not match the model in the URL (models/${model}) at index ${i}.`,
        );
        return;
      }
      const content = r['content'] as Content | undefined;
      const text = userText(content?.parts);
      const dims = typeof r['outputDimensionality'] === 'number' ? r['outputDimensionality'] : EMBEDDING_DIMS;
      vectors.push(embeddingVector(text, dims));
    }
    const json = batch
      ? JSON.stringify({ embeddings: vectors.map((values) => ({ values })) })
      : JSON.stringify({ embedding: { values: vectors[0] } });
    if (b.kind === 'malformedJson') await sendBody(ex, 200, json.slice(0, json.length / 2), b);
    else await sendBody(ex, 200, json, b);
  };

  const dispatch = async (ex: Exchange, raw: string): Promise<void> => {
    const target = ex.req.url ?? '/';
    const [path = '', query = ''] = target.split('?', 2);
    const body = mock.receive(ex, raw);
    if (options.requireApiKey !== undefined) {
      const given = ex.req.headers['x-goog-api-key'] ?? new URLSearchParams(query).get('key') ?? undefined;
      if (given !== options.requireApiKey) {
        if (ex.record) ex.record.behaviour = 'auth';
        if (given === undefined) await sendBody(ex, 403, googleError(403, defaultMessage(403, '')), {});
        else {
          await sendBody(
            ex,
            400,
            googleError(400, 'API key not valid. Please pass a valid API key.', [
              {
                '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
                reason: 'API_KEY_INVALID',
                domain: 'googleapis.com',
              },
            ]),
            {},
          );
        }
        return;
      }
    }
    if (ex.req.method === 'GET' && path.endsWith('/v1beta/models')) {
      await sendBody(ex, 200, JSON.stringify({ models: [{ name: 'models/gemini-2.5-flash' }] }), {});
      return;
    }
    const match = ex.req.method === 'POST' ? ROUTE.exec(path) : null;
    if (!match) {
      await invalid(ex, 404, `Method not found: ${ex.req.method} ${path}`);
      return;
    }
    const model = decodeURIComponent(match[1] ?? '');
    const method = match[2];
    if (!isObject(body)) {
      await invalid(ex, 400, 'Invalid JSON payload received.');
      return;
    }
    if (method === 'streamGenerateContent' && new URLSearchParams(query).get('alt') !== 'sse') {
      await invalid(ex, 400, 'mock-gemini: only alt=sse streaming is simulated');
      return;
    }
    const generate = method === 'generateContent' || method === 'streamGenerateContent';
    if (generate && (!Array.isArray(body['contents']) || body['contents'].length === 0)) {
      await invalid(ex, 400, '* GenerateContentRequest.contents: contents is not specified');
      return;
    }
    let directive: ReturnType<typeof extractDirective>;
    try {
      if (generate) {
        const contents = body['contents'] as Content[];
        for (let i = contents.length - 1; i >= 0; i--) {
          if (contents[i]?.role === 'user') {
            directive = extractDirective(userText(contents[i]?.parts));
            break;
          }
        }
      } else {
        const first = method === 'embedContent' ? body : (body['requests'] as JsonObject[] | undefined)?.[0];
        directive = extractDirective(userText((first?.['content'] as Content | undefined)?.parts));
      }
    } catch (error) {
      if (!(error instanceof DirectiveError)) throw error;
      await invalid(ex, 400, error.message);
      return;
    }
    const b = mock.behaviourFor(ex, directive?.behaviour);
    if (await answerGeneric(ex, b, model)) return;
    if (generate) {
      const plan = planOf(ex.seq, model, body, b, directive?.rest, options.frames);
      await answerGenerate(ex, plan, method === 'streamGenerateContent', b);
    } else {
      await answerEmbed(ex, model, method === 'batchEmbedContents', body, b);
    }
  };

  await mock.listen(0, dispatch);
  return mock.face({});
}

/** Odd or broken SSE in Gemini's framing (no `[DONE]`: a Gemini stream just ends). */
function malformed(payloads: string[], variant: string, le: string): string[] {
  const event = (p: string): string => `data: ${p}${le}${le}`;
  switch (variant) {
    case 'noSpace':
      return payloads.map((p) => `data:${p}${le}${le}`);
    case 'comments':
      return payloads.flatMap((p, i) => [
        `: keep-alive${le}${le}`,
        `id: ${i + 1}${le}retry: 1000${le}data: ${p}${le}${le}`,
      ]);
    case 'multiLineData':
      return payloads.map((p) => {
        const cut = p.indexOf(',') + 1;
        return `data: ${p.slice(0, cut)}${le}data: ${p.slice(cut)}${le}${le}`;
      });
    case 'garbage':
      return payloads.flatMap((p) => [event(p), `this is not sse${le}${le}`]);
    case 'noDone':
      // Gemini has no terminator: "no done" is a stream cut before its finishing frame.
      return payloads.slice(0, -1).map(event);
    default: {
      const events = payloads.slice(0, 1).map(event);
      const bad = payloads[1] ?? payloads[0] ?? '{}';
      events.push(event(bad.slice(0, Math.floor(bad.length / 2))));
      return events;
    }
  }
}
