/**
 * Mock upstream: a real HTTP server on 127.0.0.1 that speaks the OpenAI wire format
 * (chat completions as JSON and SSE, embeddings, models, OpenAI-shaped errors).
 *
 * Upstream LLM providers are the one thing the test rig simulates, so this server is
 * the ground truth the gateway is tested against: its fixtures follow OpenAI's API
 * reference (chat.completion, chat.completion.chunk with the final `choices: []` usage
 * chunk, `data: [DONE]`, embeddings list, models list, `{"error":{message,type,param,code}}`).
 *
 * Every reply is deterministic given the request (and the behaviour applied to it):
 * - reply text: `"Echo: " + <last user message text>` (a `[mock:...]` directive is removed);
 * - prompt_tokens: for every message, its whitespace-separated word count + 3;
 * - completion_tokens: the number of content (or tool-argument) frames of the stream,
 *   identical for the non-streaming response to the same request.
 *
 * Faults are chosen per request (first match wins):
 * 1. a directive in the last user message (or in an embeddings string input), e.g.
 *    `[mock:status=429,retry-after=2]` — see `parseDirective` for the syntax;
 * 2. the FIFO filled by `enqueue(...)` (one entry consumed per request);
 * 3. the behaviour set by `setDefault(...)`;
 * 4. a normal answer.
 *
 * The benchmark runs this at 1,000+ requests/s (see mock-upstream-cli.ts), so the
 * default path does no logging, no timers and a single write per response, and the
 * recording of requests can be turned off.
 */

import type { ChatMessage, ChatRequest, JsonObject } from '../../src/core/types.ts';
import {
  flushWrite,
  MockServer,
  type RecordedExchange,
  type Exchange as ServerExchange,
  sleep,
  splitBuffer,
  writePieces,
} from './mock-server.ts';

export { DEFAULT_WAIT_MS, flushWrite, now, sleep, splitBuffer } from './mock-server.ts';

// ---------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------

/** OpenAI's error envelope, as sent with every non-2xx answer. */
export interface OpenAIErrorDetail {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

export type LineEnding = '\n' | '\r\n' | '\r';

/**
 * Kinds of odd SSE for `malformedSse`. Only `invalidJson` is actually broken; the others are
 * legal per the SSE spec (or a plain truncation) and a robust parser must cope with them:
 * - `invalidJson`: after the role frame and one content frame, a `data:` frame holding truncated JSON;
 * - `noSpace`: every line is `data:{...}` with no space after the colon (legal: the space is optional);
 * - `comments`: `: keep-alive` comment lines plus `id:` and `retry:` fields between frames (legal, to ignore);
 * - `multiLineData`: every JSON payload split over two `data:` lines (legal: joined with `\n`, still valid JSON);
 * - `noDone`: a normal stream that ends without the `data: [DONE]` terminator;
 * - `garbage`: a line with no field name (`this is not sse`) between frames (legal per spec: ignored).
 */
export type MalformedSseVariant =
  | 'invalidJson'
  | 'noSpace'
  | 'comments'
  | 'multiLineData'
  | 'noDone'
  | 'garbage';

/** Options that shape any answer; each is optional and combinable with every behaviour kind. */
export interface ReplyShaping {
  /** Only for queued behaviours: consumed only by a request whose path (without query) ends with this, e.g. `/chat/completions`; other requests pass it by. */
  path?: string;
  /** Reply text instead of the echo (split into one frame per word, or into `frames` pieces by code point). */
  text?: string;
  /** Number of content frames. Without `text`, the echo is cut or padded with lorem words to this many words; with `text`, the text is split into this many pieces (at most one per code point). */
  frames?: number;
  /** Delay between stream frames (and between `splitAt` pieces). 0 = the whole stream is written at once. */
  frameDelayMs?: number;
  /** Write the response body in pieces split at these byte offsets (anywhere: inside UTF-8 sequences, inside `\r\n`), waiting for each piece to be flushed (and `frameDelayMs`, if set) before the next. */
  splitAt?: number[];
  /** Line terminator used in the SSE body. Default `\n`. */
  lineEnding?: LineEnding;
  /** Non-streaming answers: send the status line and headers, then wait this long before the body. */
  delayMs?: number;
  /** Wait this long before sending anything (status line included). */
  slowFirstByteMs?: number;
  /** Extra response headers (e.g. `x-request-id`, `retry-after`, `retry-after-ms`). */
  headers?: Record<string, string>;
  /** Completion id instead of `chatcmpl-mock-<seq>` (makes two answers byte-identical). */
  completionId?: string;
  /** Arguments JSON of the tool call answer. Default `{"location":"Paris","unit":"celsius"}`. */
  toolArguments?: string;
}

/** What to do with one request. `kind` may be omitted for a normal answer shaped by `ReplyShaping`. */
export type MockBehaviour = ReplyShaping &
  (
    | /** Normal answer. */ { kind?: 'ok' }
    | /** Answer `status` with an OpenAI-shaped error body (defaults per status; override any field with `error`). */ {
        kind: 'status';
        status: number;
        error?: Partial<OpenAIErrorDetail>;
      }
    | /** 429 with `retry-after` (seconds, or an HTTP-date from `retryAfterDate`) and/or `retry-after-ms`, plus `x-ratelimit-*` headers. */ {
        kind: 'rateLimit';
        retryAfterSeconds?: number;
        retryAfterDate?: Date | string;
        retryAfterMs?: number;
        error?: Partial<OpenAIErrorDetail>;
      }
    | /** Normal answer after waiting `ms` before the first byte (same as `slowFirstByteMs`). */ {
        kind: 'slowFirstByte';
        ms: number;
      }
    | /** Read the request body, then never answer (until the client or `close()` ends the connection). */ {
        kind: 'hang';
      }
    | /** Send `200` with SSE headers, then nothing more. */ { kind: 'hangAfterHeaders' }
    | /** Destroy the connection with a TCP RST after reading the request, before any response byte. */ {
        kind: 'reset';
      }
    | /**
     * Stream the role frame and `afterFrames` content frames, then close the connection without
     * finishing the chunked body (FIN, so the frames already sent reliably arrive; `rst: true` sends a
     * TCP RST instead, which may make the client drop data it has not read yet). On a non-streaming
     * request: send headers and the first half of the JSON body, then close.
     */ {
        kind: 'resetMidStream';
        afterFrames: number;
        rst?: boolean;
      }
    | /** Answer a 200 SSE stream with odd framing (see `MalformedSseVariant`; default `invalidJson`). */ {
        kind: 'malformedSse';
        variant?: MalformedSseVariant;
      }
    | /** 200 `application/json` whose body is the first half of the real body (content-length matches it). */ {
        kind: 'malformedJson';
      }
    | /** 200 SSE: the role frame, `afterFrames` content frames (default 1), then a `data: {"error":{...}}` frame, then the end (no `[DONE]`). */ {
        kind: 'errorInStream';
        afterFrames?: number;
        error?: Partial<OpenAIErrorDetail>;
      }
    | /** A redirect (default 307) to `location` (default: this server, path prefixed with `/redirected`), to prove redirects are not followed. */ {
        kind: 'redirect';
        location?: string;
        status?: 301 | 302 | 303 | 307 | 308;
      }
  );

export type MockBehaviourKind = NonNullable<MockBehaviour['kind']>;

export interface RecordedRequest extends RecordedExchange {
  /** Which behaviour answered (`ok` for a normal answer, `auth` for a 401 from `requireApiKey`, `invalid` for a 400/404 from validation). */
  behaviour: MockBehaviourKind | 'auth' | 'invalid';
}

export interface MockUpstreamOptions {
  /** Default content-frame count (see `ReplyShaping.frames`). */
  frames?: number;
  /** Default delay between stream frames. */
  frameDelayMs?: number;
  /** If set, answer 401 (OpenAI-shaped) unless `Authorization: Bearer <requireApiKey>` (or Azure's `api-key: <requireApiKey>`). */
  requireApiKey?: string;
  /** Record requests (default true). Turn off for benchmarks: memory then stays flat. */
  record?: boolean;
  /** Model ids listed by `GET /v1/models` (any model id is accepted for completions). */
  models?: string[];
  /** Listen port (default 0: any free port). */
  port?: number;
}

export interface MockUpstream {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `url + '/v1'` */
  readonly baseUrl: string;
  readonly port: number;
  /** Recorded requests, in order of arrival (a new array after `reset()`). */
  readonly requests: RecordedRequest[];
  /** TCP connections accepted since start. */
  readonly connections: number;
  /** Queue behaviours; each is consumed by one later request (FIFO; see `ReplyShaping.path`). */
  enqueue(...b: MockBehaviour[]): void;
  /** Behaviour for requests with no directive and nothing queued; `undefined` restores normal answers. */
  setDefault(b: MockBehaviour | undefined): void;
  /** Resolves with the recorded requests once at least `n` were recorded (default timeout 5 s). */
  waitForRequests(n: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  /**
   * Resolves with the earliest recorded request the client aborted (already, or in future).
   * Pass `{ requestId }` to wait for that particular request. Default timeout 5 s.
   */
  waitForAbort(timeoutMs?: number): Promise<RecordedRequest>;
  waitForAbort(options: { requestId?: number; timeoutMs?: number }): Promise<RecordedRequest>;
  /** Clear recordings, the queue and the default behaviour. */
  reset(): void;
  /** Destroy every open connection (hung ones included) and stop the server. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

const DEFAULT_MODELS = ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small'];
export const DEFAULT_TOOL_ARGUMENTS = '{"location":"Paris","unit":"celsius"}';
export const LOREM = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor'.split(
  ' ',
);
const EMBEDDING_DIMS = 8;
/** Pieces a tool call's arguments are streamed in when `frames` is not set. */
export const DEFAULT_TOOL_FRAMES = 4;

function defaultError(status: number, model: string | undefined): OpenAIErrorDetail {
  switch (status) {
    case 400:
      return {
        message: 'Invalid request (mock upstream).',
        type: 'invalid_request_error',
        param: null,
        code: null,
      };
    case 401:
      return {
        message:
          'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_api_key',
      };
    case 403:
      return {
        message: 'You are not allowed to sample from this model.',
        type: 'invalid_request_error',
        param: null,
        code: 'model_not_allowed',
      };
    case 404:
      return {
        message: `The model \`${model ?? 'unknown'}\` does not exist or you do not have access to it.`,
        type: 'invalid_request_error',
        param: null,
        code: 'model_not_found',
      };
    case 429:
      return {
        message: `Rate limit reached for ${model ?? 'the model'} on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again later.`,
        type: 'requests',
        param: null,
        code: 'rate_limit_exceeded',
      };
    case 500:
      return {
        message: 'The server had an error while processing your request. Sorry about that!',
        type: 'server_error',
        param: null,
        code: null,
      };
    case 503:
      return {
        message: 'The server is overloaded or not ready yet.',
        type: 'server_error',
        param: null,
        code: null,
      };
    default:
      return {
        message: `Mock upstream error (status ${status}).`,
        type: status >= 500 ? 'server_error' : 'invalid_request_error',
        param: null,
        code: null,
      };
  }
}

/** Adds the `retry-after` (seconds or HTTP-date) and `retry-after-ms` headers a `rateLimit` behaviour asks for. */
export function addRetryAfter(
  headers: Record<string, string>,
  b: { retryAfterSeconds?: number; retryAfterDate?: Date | string; retryAfterMs?: number },
): void {
  if (b.retryAfterSeconds !== undefined) headers['retry-after'] = String(b.retryAfterSeconds);
  if (b.retryAfterDate !== undefined) {
    headers['retry-after'] =
      typeof b.retryAfterDate === 'string' ? b.retryAfterDate : b.retryAfterDate.toUTCString();
  }
  if (b.retryAfterMs !== undefined) headers['retry-after-ms'] = String(b.retryAfterMs);
}

function errorJson(detail: OpenAIErrorDetail): string {
  return JSON.stringify({ error: detail });
}

const JSON_TYPE = 'application/json';
const SSE_TYPE = 'text/event-stream; charset=utf-8';

// ---------------------------------------------------------------------------------------
// Small pure helpers
// ---------------------------------------------------------------------------------------

/** Whitespace-separated word count, without allocating. */
export function countWords(s: string): number {
  let n = 0;
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const space = c === 32 || (c >= 9 && c <= 13) || c === 160 || c === 0x3000;
    if (space) inWord = false;
    else if (!inWord) {
      inWord = true;
      n++;
    }
  }
  return n;
}

export function contentText(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  for (const part of content) {
    if (part.type === 'text' && typeof part.text === 'string') out += (out ? ' ' : '') + part.text;
  }
  return out;
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Splits so that the pieces concatenate back to `text`: one piece per word, leading whitespace attached. */
export function wordPieces(text: string): string[] {
  const pieces = text.match(/\s*\S+/g) ?? [];
  const tail = /\s+$/.exec(text);
  if (tail && pieces.length > 0) pieces[pieces.length - 1] += tail[0];
  return pieces;
}

/**
 * The content frames of an answer: one per word without `frames`; with `frames`, a given text
 * (`exactText`) split into that many pieces, or the echo cut or padded with lorem words to that
 * many words.
 */
export function replyPieces(text: string, frames: number | undefined, exactText: boolean): string[] {
  if (frames === undefined) return wordPieces(text);
  if (exactText) return codePointPieces(text, frames);
  const words = text.split(/\s+/).filter(Boolean);
  for (let i = 0; words.length < frames; i++) words.push(LOREM[i % LOREM.length] ?? 'lorem');
  return words.slice(0, frames).map((w, i) => (i === 0 ? w : ' ' + w));
}

/** `frames` pieces of nearly equal length, cut between code points (never inside a surrogate pair). */
export function codePointPieces(text: string, frames: number): string[] {
  const cps = Array.from(text);
  const n = Math.max(0, Math.min(frames, cps.length));
  const pieces: string[] = [];
  for (let i = 0; i < n; i++) {
    pieces.push(cps.slice(Math.floor((i * cps.length) / n), Math.floor(((i + 1) * cps.length) / n)).join(''));
  }
  return pieces;
}

/** FNV-1a, for deterministic embedding vectors. */
function fnv1a(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function embeddingVector(input: string, dims: number): number[] {
  const v: number[] = [];
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    const x = (fnv1a(input, i * 0x9e3779b1) / 0xffffffff) * 2 - 1;
    v.push(x);
    norm += x * x;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  // Rounded so the float and base64 (float32) encodings decode to nearly the same numbers.
  return v.map((x) => Math.fround(x * scale));
}

function float32Base64(v: number[]): string {
  const buf = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) buf.writeFloatLE(v[i] ?? 0, i * 4);
  return buf.toString('base64');
}

// ---------------------------------------------------------------------------------------
// Directives: `[mock:key=value,key,key=value]`
// ---------------------------------------------------------------------------------------

const DIRECTIVE_RE = /\[mock:([^\]]*)\]/;

/** Thrown for a directive the mock does not understand; answered as a 400 so mistakes are loud. */
export class DirectiveError extends Error {}

function normKey(k: string): string {
  return k.toLowerCase().replace(/[-_\s]/g, '');
}

function intValue(key: string, v: string | undefined): number {
  const n = Number(v);
  if (v === undefined || v === '' || !Number.isFinite(n) || n < 0) {
    throw new DirectiveError(`mock directive: "${key}" needs a non-negative number, got "${v ?? ''}"`);
  }
  return n;
}

const LINE_ENDINGS: Record<string, LineEnding> = { lf: '\n', crlf: '\r\n', cr: '\r' };
const SSE_VARIANTS: Record<string, MalformedSseVariant> = {
  invalidjson: 'invalidJson',
  nospace: 'noSpace',
  comments: 'comments',
  multilinedata: 'multiLineData',
  nodone: 'noDone',
  garbage: 'garbage',
};

/**
 * Parses the body of a `[mock:...]` directive. Entries are comma-separated `key=value` or bare
 * flags; keys are case-insensitive and `-`/`_` are ignored (`retry-after` = `retryAfter`).
 * Values cannot contain `,` or `]`.
 *
 * Kind (at most one): `status=N`, `rate-limit`, `slow-first-byte=MS`, `hang`, `hang-after-headers`,
 * `reset`, `reset-mid-stream=N`, `malformed-sse[=invalid-json|no-space|comments|multi-line-data|no-done|garbage]`,
 * `malformed-json`, `error-in-stream[=N]`, `redirect[=URL]`.
 * Modifiers: `retry-after=S|HTTP-date`, `retry-after-ms=N` (headers with `status`, fields with `rate-limit`),
 * `frames=N`, `frame-delay-ms=N`, `split-at=A|B|C`, `line-ending=lf|crlf|cr`, `text=...`, `delay-ms=N`,
 * `id=...` (completion id), `rst` (with `reset-mid-stream`), and any `x-...=value` (sent as a response header).
 */
export function parseDirective(spec: string): MockBehaviour {
  // Widened on purpose: it is assigned inside `setKind`, which narrowing does not see.
  let kind = 'ok' as MockBehaviourKind;
  let status = 0;
  let afterFrames: number | undefined;
  let variant: MalformedSseVariant | undefined;
  let location: string | undefined;
  let retryAfter: string | undefined;
  let retryAfterMs: number | undefined;
  let rst = false;
  const shaping: ReplyShaping = {};
  const headers: Record<string, string> = {};
  const setKind = (k: MockBehaviourKind): void => {
    if (kind !== 'ok') throw new DirectiveError(`mock directive: two kinds given ("${kind}" and "${k}")`);
    kind = k;
  };
  for (const entry of spec.split(',')) {
    const raw = entry.trim();
    if (!raw) continue;
    const eq = raw.indexOf('=');
    const rawKey = (eq < 0 ? raw : raw.slice(0, eq)).trim();
    const value = eq < 0 ? undefined : raw.slice(eq + 1).trim();
    const key = normKey(rawKey);
    switch (key) {
      case 'status':
        setKind('status');
        status = intValue(rawKey, value);
        break;
      case 'ratelimit':
        setKind('rateLimit');
        break;
      case 'slowfirstbyte':
        shaping.slowFirstByteMs = intValue(rawKey, value);
        break;
      case 'hang':
        setKind('hang');
        break;
      case 'hangafterheaders':
        setKind('hangAfterHeaders');
        break;
      case 'reset':
        setKind('reset');
        break;
      case 'resetmidstream':
        setKind('resetMidStream');
        afterFrames = intValue(rawKey, value);
        break;
      case 'rst':
        rst = true;
        break;
      case 'malformedsse': {
        setKind('malformedSse');
        if (value !== undefined) {
          variant = SSE_VARIANTS[normKey(value)];
          if (!variant) throw new DirectiveError(`mock directive: unknown malformed-sse variant "${value}"`);
        }
        break;
      }
      case 'malformedjson':
        setKind('malformedJson');
        break;
      case 'errorinstream':
        setKind('errorInStream');
        if (value !== undefined) afterFrames = intValue(rawKey, value);
        break;
      case 'redirect':
        setKind('redirect');
        location = value || undefined;
        break;
      case 'retryafter':
        retryAfter = value ?? '';
        break;
      case 'retryafterms':
        retryAfterMs = intValue(rawKey, value);
        break;
      case 'frames':
        shaping.frames = intValue(rawKey, value);
        break;
      case 'framedelayms':
        shaping.frameDelayMs = intValue(rawKey, value);
        break;
      case 'splitat':
        shaping.splitAt = (value ?? '').split('|').map((x) => intValue(rawKey, x));
        break;
      case 'lineending': {
        const le = LINE_ENDINGS[normKey(value ?? '')];
        if (!le)
          throw new DirectiveError(`mock directive: line-ending must be lf, crlf or cr, got "${value}"`);
        shaping.lineEnding = le;
        break;
      }
      case 'text':
        shaping.text = value ?? '';
        break;
      case 'delayms':
        shaping.delayMs = intValue(rawKey, value);
        break;
      case 'id':
        shaping.completionId = value ?? '';
        break;
      default:
        if (rawKey.toLowerCase().startsWith('x-') && value !== undefined)
          headers[rawKey.toLowerCase()] = value;
        else throw new DirectiveError(`mock directive: unknown key "${rawKey}"`);
    }
  }
  if (kind !== 'rateLimit') {
    if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
    if (retryAfterMs !== undefined) headers['retry-after-ms'] = String(retryAfterMs);
  }
  if (Object.keys(headers).length > 0) shaping.headers = headers;
  switch (kind) {
    case 'ok':
      return shaping;
    case 'status':
      return { ...shaping, kind, status };
    case 'rateLimit': {
      const seconds = retryAfter !== undefined && /^\d+(\.\d+)?$/.test(retryAfter);
      return {
        ...shaping,
        kind,
        ...(retryAfter !== undefined && seconds ? { retryAfterSeconds: Number(retryAfter) } : {}),
        ...(retryAfter !== undefined && !seconds ? { retryAfterDate: retryAfter } : {}),
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      };
    }
    case 'resetMidStream':
      return { ...shaping, kind, afterFrames: afterFrames ?? 0, rst };
    case 'malformedSse':
      return variant ? { ...shaping, kind, variant } : { ...shaping, kind };
    case 'errorInStream':
      return afterFrames === undefined ? { ...shaping, kind } : { ...shaping, kind, afterFrames };
    case 'redirect':
      return location ? { ...shaping, kind, location } : { ...shaping, kind };
    case 'slowFirstByte':
      return { ...shaping, kind, ms: shaping.slowFirstByteMs ?? 0 };
    default:
      return { ...shaping, kind };
  }
}

/** Finds and removes a directive; `undefined` when the text has none (the cheap, common case). */
export function extractDirective(text: string): { behaviour: MockBehaviour; rest: string } | undefined {
  if (!text.includes('[mock:')) return undefined;
  const m = DIRECTIVE_RE.exec(text);
  if (!m) return undefined;
  return {
    behaviour: parseDirective(m[1] ?? ''),
    rest: (text.slice(0, m.index) + text.slice(m.index + m[0].length)).trim(),
  };
}

// ---------------------------------------------------------------------------------------
// Chat plan: everything an answer needs, derived once per request
// ---------------------------------------------------------------------------------------

interface ChatPlan {
  id: string;
  created: number;
  model: string;
  includeUsage: boolean;
  /** Content pieces, or the tool call's argument pieces. */
  pieces: string[];
  tool: { id: string; name: string } | undefined;
  finishReason: 'stop' | 'length' | 'tool_calls';
  promptTokens: number;
}

function usageJson(prompt: number, completion: number): string {
  return (
    '{"prompt_tokens":' +
    prompt +
    ',"completion_tokens":' +
    completion +
    ',"total_tokens":' +
    (prompt + completion) +
    ',"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}'
  );
}

function chunkPrefix(p: ChatPlan): string {
  return (
    '{"id":' +
    JSON.stringify(p.id) +
    ',"object":"chat.completion.chunk","created":' +
    p.created +
    ',"model":' +
    JSON.stringify(p.model) +
    ',"service_tier":"default","system_fingerprint":"fp_mock","choices":'
  );
}

/** The JSON payloads of a stream, in order, without `[DONE]`. */
function chatChunkPayloads(p: ChatPlan): string[] {
  const prefix = chunkPrefix(p);
  const tail = p.includeUsage ? ',"usage":null}' : '}';
  const choice = (delta: string, finish: string): string =>
    prefix + '[{"index":0,"delta":' + delta + ',"logprobs":null,"finish_reason":' + finish + '}]' + tail;
  const out: string[] = [];
  if (p.tool) {
    out.push(
      choice(
        '{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":' +
          JSON.stringify(p.tool.id) +
          ',"type":"function","function":{"name":' +
          JSON.stringify(p.tool.name) +
          ',"arguments":""}}],"refusal":null}',
        'null',
      ),
    );
    for (const piece of p.pieces) {
      out.push(
        choice('{"tool_calls":[{"index":0,"function":{"arguments":' + JSON.stringify(piece) + '}}]}', 'null'),
      );
    }
  } else {
    out.push(choice('{"role":"assistant","content":"","refusal":null}', 'null'));
    for (const piece of p.pieces) out.push(choice('{"content":' + JSON.stringify(piece) + '}', 'null'));
  }
  out.push(choice('{}', JSON.stringify(p.finishReason)));
  if (p.includeUsage) out.push(prefix + '[],"usage":' + usageJson(p.promptTokens, p.pieces.length) + '}');
  return out;
}

function chatCompletionJson(p: ChatPlan): string {
  const joined = p.pieces.join('');
  const message = p.tool
    ? '{"role":"assistant","content":null,"tool_calls":[{"id":' +
      JSON.stringify(p.tool.id) +
      ',"type":"function","function":{"name":' +
      JSON.stringify(p.tool.name) +
      ',"arguments":' +
      JSON.stringify(joined) +
      '}}],"refusal":null,"annotations":[]}'
    : '{"role":"assistant","content":' + JSON.stringify(joined) + ',"refusal":null,"annotations":[]}';
  return (
    '{"id":' +
    JSON.stringify(p.id) +
    ',"object":"chat.completion","created":' +
    p.created +
    ',"model":' +
    JSON.stringify(p.model) +
    ',"choices":[{"index":0,"message":' +
    message +
    ',"logprobs":null,"finish_reason":' +
    JSON.stringify(p.finishReason) +
    '}],"usage":' +
    usageJson(p.promptTokens, p.pieces.length) +
    ',"service_tier":"default","system_fingerprint":"fp_mock"}'
  );
}

function sseEvent(payload: string, le: LineEnding): string {
  return 'data: ' + payload + le + le;
}

function doneEvent(le: LineEnding): string {
  return 'data: [DONE]' + le + le;
}

function malformedEvents(payloads: string[], variant: MalformedSseVariant, le: LineEnding): string[] {
  switch (variant) {
    case 'invalidJson': {
      const events = payloads.slice(0, 2).map((p) => sseEvent(p, le));
      const bad = payloads[2] ?? payloads[0] ?? '{}';
      events.push(sseEvent(bad.slice(0, Math.floor(bad.length / 2)), le));
      events.push(doneEvent(le));
      return events;
    }
    case 'noSpace':
      return [...payloads.map((p) => 'data:' + p + le + le), 'data:[DONE]' + le + le];
    case 'comments': {
      const events = [': keep-alive' + le + le];
      payloads.forEach((p, i) => {
        events.push('id: ' + (i + 1) + le + 'retry: 1000' + le + 'data: ' + p + le + le);
        events.push(': ping' + le + le);
      });
      events.push(doneEvent(le));
      return events;
    }
    case 'multiLineData': {
      const events = payloads.map((p) => {
        const cut = p.indexOf(',') + 1;
        return 'data: ' + p.slice(0, cut) + le + 'data: ' + p.slice(cut) + le + le;
      });
      events.push(doneEvent(le));
      return events;
    }
    case 'noDone':
      return payloads.map((p) => sseEvent(p, le));
    case 'garbage': {
      const events: string[] = [];
      for (const p of payloads) {
        events.push(sseEvent(p, le));
        events.push('this is not sse' + le + le);
      }
      events.push(doneEvent(le));
      return events;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------

type Exchange = ServerExchange<RecordedRequest>;

type Route = 'chat' | 'embeddings' | 'models' | 'model' | undefined;

function routeOf(method: string | undefined, target: string): { route: Route; modelId?: string } {
  // Suffix matching, so that the gateway may use any base URL prefix (`/v1`, `/openai/v1`, ...);
  // the query is ignored (Azure OpenAI puts `?api-version=` on every path).
  const path = target.split('?', 1)[0] ?? target;
  if (method === 'POST') {
    if (path.endsWith('/chat/completions')) return { route: 'chat' };
    if (path.endsWith('/embeddings')) return { route: 'embeddings' };
  } else if (method === 'GET') {
    if (path.endsWith('/models')) return { route: 'models' };
    const i = path.lastIndexOf('/models/');
    if (i >= 0) return { route: 'model', modelId: decodeURIComponent(path.slice(i + 8)) };
  }
  return { route: undefined };
}

export async function startMockUpstream(options: MockUpstreamOptions = {}): Promise<MockUpstream> {
  const created = Math.floor(Date.now() / 1000);
  const modelIds = options.models ?? DEFAULT_MODELS;
  const modelsJson = JSON.stringify({
    object: 'list',
    data: modelIds.map((id) => ({ id, object: 'model', created, owned_by: 'mock-upstream' })),
  });
  const expectedAuth = options.requireApiKey === undefined ? undefined : `Bearer ${options.requireApiKey}`;

  const mock = new MockServer<MockBehaviour, RecordedRequest>({
    name: 'mock-upstream',
    record: options.record,
    bugResponse: (_ex, message) => ({
      contentType: JSON_TYPE,
      body: errorJson({
        message: `mock-upstream bug: ${message}`,
        type: 'server_error',
        param: null,
        code: null,
      }),
    }),
  });

  // ---- response writers -------------------------------------------------------------

  const headersFor = (
    ex: Exchange,
    contentType: string | undefined,
    b: ReplyShaping,
  ): Record<string, string> => {
    const h: Record<string, string> = { 'x-request-id': `req_mock_${ex.seq}` };
    if (contentType) h['content-type'] = contentType;
    if (b.headers) for (const [k, v] of Object.entries(b.headers)) h[k.toLowerCase()] = v;
    return h;
  };

  /** A complete body with content-length, honouring slowFirstByte, delayMs and splitAt. */
  const sendBody = async (
    ex: Exchange,
    status: number,
    contentType: string | undefined,
    body: string,
    b: ReplyShaping,
    extraHeaders?: Record<string, string>,
  ): Promise<void> => {
    const { res, ac } = ex;
    if (b.slowFirstByteMs && !(await sleep(b.slowFirstByteMs, ac.signal))) return;
    const buf = Buffer.from(body);
    const headers = headersFor(ex, contentType, b);
    if (extraHeaders) Object.assign(headers, extraHeaders);
    headers['content-length'] = String(buf.length);
    if (!b.delayMs && !b.splitAt) {
      res.writeHead(status, headers);
      mock.markHead(ex, status);
      res.end(buf);
      return;
    }
    res.writeHead(status, headers);
    res.flushHeaders();
    mock.markHead(ex, status);
    if (b.delayMs && !(await sleep(b.delayMs, ac.signal))) return;
    await writePieces(ex, b.splitAt ? splitBuffer(buf, b.splitAt) : [buf], b.frameDelayMs ?? 0);
  };

  const startSse = async (ex: Exchange, b: ReplyShaping): Promise<boolean> => {
    if (b.slowFirstByteMs && !(await sleep(b.slowFirstByteMs, ex.ac.signal))) return false;
    const headers = headersFor(ex, SSE_TYPE, b);
    headers['cache-control'] = 'no-cache';
    ex.res.writeHead(200, headers);
    mock.markHead(ex, 200);
    return true;
  };

  /**
   * Streams SSE events. `end`: finish the response (false leaves it open for the caller).
   * Returns false if the connection went away.
   */
  const sendEvents = async (
    ex: Exchange,
    events: string[],
    b: ReplyShaping,
    end: boolean,
  ): Promise<boolean> => {
    const { res, ac } = ex;
    const gap = b.frameDelayMs ?? options.frameDelayMs ?? 0;
    if (b.splitAt) {
      const buf = Buffer.from(events.join(''));
      const pieces = splitBuffer(buf, b.splitAt);
      if (!end) {
        for (let i = 0; i < pieces.length; i++) {
          if (i > 0 && !(await sleep(gap, ac.signal))) return false;
          const piece = pieces[i];
          if (piece) await flushWrite(res, piece);
          if (ac.signal.aborted) return false;
        }
        return true;
      }
      res.flushHeaders();
      await writePieces(ex, pieces, gap);
      return !ac.signal.aborted;
    }
    if (gap <= 0) {
      // Hot path: the whole stream in one write.
      const all = events.join('');
      if (end) res.end(all);
      else await flushWrite(res, all);
      return !ac.signal.aborted;
    }
    res.flushHeaders();
    for (let i = 0; i < events.length; i++) {
      if (!(await sleep(gap, ac.signal))) return false;
      const ev = events[i] ?? '';
      if (end && i === events.length - 1) res.end(ev);
      else {
        await flushWrite(res, ev);
        if (ac.signal.aborted) return false;
      }
    }
    if (end && events.length === 0) res.end();
    return true;
  };

  // ---- request handling -------------------------------------------------------------

  const planChat = (
    ex: Exchange,
    body: ChatRequest,
    b: MockBehaviour,
    restText: string | undefined,
  ): ChatPlan => {
    const messages = body.messages;
    let promptTokens = 0;
    for (const m of messages) promptTokens += countWords(contentText(m.content)) + 3;
    const last = messages[messages.length - 1];
    const frames = b.frames ?? options.frames;
    const tools = Array.isArray(body.tools) ? body.tools : [];
    let tool: ChatPlan['tool'];
    let pieces: string[];
    if (tools.length > 0 && body.tool_choice !== 'none' && last?.role === 'user') {
      const choice = body.tool_choice;
      let name = tools[0]?.function?.name ?? 'tool';
      if (
        isObject(choice) &&
        isObject(choice['function']) &&
        typeof choice['function']['name'] === 'string'
      ) {
        name = choice['function']['name'];
      }
      tool = { id: `call_mock_${ex.seq}`, name };
      pieces = codePointPieces(b.toolArguments ?? DEFAULT_TOOL_ARGUMENTS, frames ?? DEFAULT_TOOL_FRAMES);
    } else {
      let text: string;
      if (b.text !== undefined) {
        text = b.text;
      } else if (last?.role === 'tool') {
        text = 'Echo: ' + contentText(last.content);
      } else {
        let userText = restText;
        if (userText === undefined) {
          for (let i = messages.length - 1; i >= 0; i--) {
            const m = messages[i];
            if (m?.role === 'user') {
              userText = contentText(m.content);
              break;
            }
          }
        }
        text = 'Echo: ' + (userText ?? '');
      }
      pieces = replyPieces(text, frames, b.text !== undefined);
    }
    let finishReason: ChatPlan['finishReason'] = tool ? 'tool_calls' : 'stop';
    const max = body.max_completion_tokens ?? body.max_tokens;
    if (typeof max === 'number' && max >= 0 && pieces.length > max) {
      pieces = pieces.slice(0, max);
      finishReason = 'length';
    }
    return {
      id: b.completionId ?? `chatcmpl-mock-${ex.seq}`,
      created,
      model: body.model,
      includeUsage: body.stream === true && body.stream_options?.include_usage === true,
      pieces,
      tool,
      finishReason,
      promptTokens,
    };
  };

  const answerChat = async (ex: Exchange, body: ChatRequest, b: MockBehaviour, rest: string | undefined) => {
    const plan = planChat(ex, body, b, rest);
    const le = b.lineEnding ?? '\n';
    const stream = body.stream === true;
    switch (b.kind) {
      case 'resetMidStream': {
        if (!stream) {
          await sendJsonWithFaults(ex, chatCompletionJson(plan), b);
          return;
        }
        if (!(await startSse(ex, b))) return;
        const payloads = chatChunkPayloads(plan).slice(0, 1 + b.afterFrames);
        if (
          await sendEvents(
            ex,
            payloads.map((p) => sseEvent(p, le)),
            b,
            false,
          )
        )
          mock.destroy(ex, b.rst === true);
        return;
      }
      case 'errorInStream': {
        if (!(await startSse(ex, b))) return;
        const payloads = chatChunkPayloads(plan).slice(0, 1 + (b.afterFrames ?? 1));
        const events = payloads.map((p) => sseEvent(p, le));
        events.push(sseEvent(errorJson({ ...defaultError(500, plan.model), ...b.error }), le));
        await sendEvents(ex, events, b, true);
        return;
      }
      case 'malformedSse': {
        if (!(await startSse(ex, b))) return;
        await sendEvents(
          ex,
          malformedEvents(chatChunkPayloads(plan), b.variant ?? 'invalidJson', le),
          b,
          true,
        );
        return;
      }
      case 'malformedJson':
        await sendJsonWithFaults(ex, chatCompletionJson(plan), b);
        return;
      default: {
        if (!stream) {
          await sendBody(ex, 200, JSON_TYPE, chatCompletionJson(plan), b);
          return;
        }
        if (!(await startSse(ex, b))) return;
        const events = chatChunkPayloads(plan).map((p) => sseEvent(p, le));
        events.push(doneEvent(le));
        await sendEvents(ex, events, b, true);
      }
    }
  };

  const answerEmbeddings = async (ex: Exchange, body: JsonObject, b: MockBehaviour): Promise<void> => {
    const input = body['input'];
    let inputs: string[];
    let tokens = 0;
    if (typeof input === 'string') {
      inputs = [input];
      tokens = countWords(input);
    } else if (Array.isArray(input) && input.every((x): x is string => typeof x === 'string')) {
      inputs = input;
      for (const s of inputs) tokens += countWords(s);
    } else if (Array.isArray(input) && input.every((x): x is number => typeof x === 'number')) {
      inputs = [input.join(',')];
      tokens = input.length;
    } else if (Array.isArray(input) && input.every((x): x is unknown[] => Array.isArray(x))) {
      inputs = input.map((x) => x.join(','));
      for (const x of input) tokens += x.length;
    } else {
      await sendBody(
        ex,
        400,
        JSON_TYPE,
        errorJson({
          message: "'input' must be a string, an array of strings, or an array of token arrays.",
          type: 'invalid_request_error',
          param: 'input',
          code: null,
        }),
        {},
      );
      return;
    }
    const dims =
      typeof body['dimensions'] === 'number' && body['dimensions'] > 0 ? body['dimensions'] : EMBEDDING_DIMS;
    const base64 = body['encoding_format'] === 'base64';
    const data = inputs.map((s, index) => {
      const v = embeddingVector(s, dims);
      return { object: 'embedding', index, embedding: base64 ? float32Base64(v) : v };
    });
    const json = JSON.stringify({
      object: 'list',
      data,
      model: String(body['model']),
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
    await sendJsonWithFaults(ex, json, b);
  };

  /** A JSON answer, cut in half by `malformedJson` (whole response) or `resetMidStream` (connection closed mid-body). */
  const sendJsonWithFaults = async (ex: Exchange, json: string, b: MockBehaviour): Promise<void> => {
    switch (b.kind) {
      case 'malformedJson':
        await sendBody(ex, 200, JSON_TYPE, json.slice(0, Math.floor(json.length / 2)), b);
        return;
      case 'resetMidStream': {
        if (b.slowFirstByteMs && !(await sleep(b.slowFirstByteMs, ex.ac.signal))) return;
        const buf = Buffer.from(json);
        const headers = headersFor(ex, JSON_TYPE, b);
        headers['content-length'] = String(buf.length);
        ex.res.writeHead(200, headers);
        mock.markHead(ex, 200);
        await flushWrite(ex.res, buf.subarray(0, Math.floor(buf.length / 2)));
        if (!ex.ac.signal.aborted) mock.destroy(ex, b.rst === true);
        return;
      }
      default:
        await sendBody(ex, 200, JSON_TYPE, json, b);
    }
  };

  /** Behaviours that answer the same way whatever the endpoint. Returns true if it answered. */
  const answerGeneric = async (
    ex: Exchange,
    b: MockBehaviour,
    model: string | undefined,
  ): Promise<boolean> => {
    switch (b.kind) {
      case 'status': {
        const detail = { ...defaultError(b.status, model), ...b.error };
        await sendBody(ex, b.status, JSON_TYPE, errorJson(detail), b);
        return true;
      }
      case 'rateLimit': {
        const extra: Record<string, string> = {
          'x-ratelimit-limit-requests': '3',
          'x-ratelimit-remaining-requests': '0',
          'x-ratelimit-reset-requests': `${b.retryAfterSeconds ?? 1}s`,
        };
        addRetryAfter(extra, b);
        await sendBody(ex, 429, JSON_TYPE, errorJson({ ...defaultError(429, model), ...b.error }), b, extra);
        return true;
      }
      case 'hang':
        return true;
      case 'hangAfterHeaders':
        if (await startSse(ex, b)) ex.res.flushHeaders();
        return true;
      case 'reset':
        await mock.resetBeforeAnswer(ex, b.slowFirstByteMs);
        return true;
      case 'redirect': {
        const location = b.location ?? mock.redirectTarget(ex);
        await sendBody(ex, b.status ?? 307, 'text/plain; charset=utf-8', `Redirecting to ${location}\n`, b, {
          location,
        });
        return true;
      }
      default:
        return false;
    }
  };

  const invalid = (ex: Exchange, status: number, detail: OpenAIErrorDetail): Promise<void> => {
    if (ex.record) ex.record.behaviour = 'invalid';
    return sendBody(ex, status, JSON_TYPE, errorJson(detail), {});
  };

  const dispatch = async (ex: Exchange, rawBody: string): Promise<void> => {
    const { req } = ex;
    const path = req.url ?? '/';
    const body = mock.receive(ex, rawBody);

    // Azure OpenAI sends the key as `api-key` instead of a bearer token.
    const azureKey = options.requireApiKey !== undefined && req.headers['api-key'] === options.requireApiKey;
    if (expectedAuth !== undefined && req.headers.authorization !== expectedAuth && !azureKey) {
      if (ex.record) ex.record.behaviour = 'auth';
      await sendBody(ex, 401, JSON_TYPE, errorJson(defaultError(401, undefined)), {});
      return;
    }

    const { route, modelId } = routeOf(req.method, path);
    if (route === undefined) {
      await invalid(ex, 404, {
        message: `Invalid URL (${req.method} ${path})`,
        type: 'invalid_request_error',
        param: null,
        code: null,
      });
      return;
    }
    if ((route === 'chat' || route === 'embeddings') && !isObject(body)) {
      await invalid(ex, 400, {
        message:
          "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
        type: 'invalid_request_error',
        param: null,
        code: null,
      });
      return;
    }
    const obj: JsonObject = isObject(body) ? body : {};
    const model = typeof obj['model'] === 'string' ? obj['model'] : undefined;
    if ((route === 'chat' || route === 'embeddings') && model === undefined) {
      await invalid(ex, 400, {
        message: 'you must provide a model parameter',
        type: 'invalid_request_error',
        param: null,
        code: null,
      });
      return;
    }
    if (route === 'chat' && !Array.isArray(obj['messages'])) {
      await invalid(ex, 400, {
        message: "Missing required parameter: 'messages'.",
        type: 'invalid_request_error',
        param: 'messages',
        code: 'missing_required_parameter',
      });
      return;
    }

    // Directive: in the last user message (chat) or in a string input (embeddings).
    let directive: { behaviour: MockBehaviour; rest: string } | undefined;
    try {
      if (route === 'chat') {
        const messages = obj['messages'] as ChatMessage[];
        for (let i = messages.length - 1; i >= 0; i--) {
          const m = messages[i];
          if (m?.role === 'user') {
            directive = extractDirective(contentText(m.content));
            break;
          }
        }
      } else if (route === 'embeddings') {
        const input = obj['input'];
        const first = typeof input === 'string' ? input : Array.isArray(input) ? input[0] : undefined;
        if (typeof first === 'string') directive = extractDirective(first);
      }
    } catch (err) {
      if (!(err instanceof DirectiveError)) throw err;
      await invalid(ex, 400, {
        message: err.message,
        type: 'invalid_request_error',
        param: null,
        code: null,
      });
      return;
    }

    const b = mock.behaviourFor(ex, directive?.behaviour);

    if (await answerGeneric(ex, b, model)) return;
    switch (route) {
      case 'chat':
        await answerChat(ex, obj as ChatRequest, b, directive?.rest);
        return;
      case 'embeddings':
        await answerEmbeddings(ex, obj, b);
        return;
      case 'models':
        await sendJsonWithFaults(ex, modelsJson, b);
        return;
      case 'model': {
        if (modelId === undefined || !modelIds.includes(modelId)) {
          await invalid(ex, 404, defaultError(404, modelId));
          return;
        }
        await sendJsonWithFaults(
          ex,
          JSON.stringify({ id: modelId, object: 'model', created, owned_by: 'mock-upstream' }),
          b,
        );
      }
    }
  };

  await mock.listen(options.port ?? 0, dispatch);
  return mock.face({ baseUrl: `${mock.url}/v1` });
}
