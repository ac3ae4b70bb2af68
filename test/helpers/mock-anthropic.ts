/**
 * Mock Anthropic upstream: a real HTTP server on 127.0.0.1 speaking the Messages API
 * (`POST /v1/messages` as JSON and as SSE with `event:` lines, `POST /v1/messages/count_tokens`
 * answering `{"input_tokens": N}`, `GET /v1/models`, `{"type":"error","error":{type,message}}`
 * errors), following Anthropic's API reference.
 *
 * It behaves like the OpenAI mock (mock-upstream.ts), in Anthropic's wire format, so one
 * matrix test can check every provider the same way:
 * - reply text: `"Echo: " + <text of the last user message>` (a `[mock:...]` directive
 *   removed), or `"Echo: " + <tool result text>` when the last user turn carries tool results;
 * - tools declared, last turn from the user (not tool results), tool choice not `none`: ONE
 *   `tool_use` block for the first (or the forced) tool, input `{"location":"Paris","unit":"celsius"}`;
 * - usage: input_tokens = Σ over messages and the system prompt of (word count + 3), the
 *   same number count_tokens answers for that prompt;
 *   output_tokens = number of content frames, the same streamed or not; `max_tokens` below
 *   the frame count truncates with `stop_reason: "max_tokens"`;
 * - `thinking: {type: "enabled"}` adds one thinking block (not counted in output tokens).
 *
 * Faults: the same directives (`parseDirective`), `enqueue` and `setDefault` as the OpenAI
 * mock; errors use Anthropic's bodies and statuses (529 `overloaded_error`, 429
 * `rate_limit_error` with `retry-after`), `errorInStream` sends `event: error` after a 200.
 * One extension: `gate` holds a stream after `gateAfterFrames` content frames until the
 * promise settles, so a test can prove a delta reached the client before the upstream finished.
 */

import type { ContentPart, JsonObject } from '../../src/core/types.ts';
import {
  flushWrite,
  MockServer,
  type Exchange as ServerExchange,
  sleep,
  splitBuffer,
} from './mock-server.ts';
import {
  addRetryAfter,
  codePointPieces,
  contentText,
  countWords,
  DEFAULT_TOOL_ARGUMENTS,
  DEFAULT_TOOL_FRAMES,
  DirectiveError,
  extractDirective,
  isObject,
  type LineEnding,
  type MalformedSseVariant,
  type MockBehaviour,
  type RecordedRequest,
  replyPieces,
} from './mock-upstream.ts';

export type AnthropicMockBehaviour = MockBehaviour & {
  /** Streams: hold after `gateAfterFrames` (default 1) content frames until this settles. */
  gate?: Promise<unknown>;
  gateAfterFrames?: number;
  /** Prompt-cache counts to report in `usage` (default 0), for billing tests. */
  cacheRead?: number;
  cacheCreation?: number;
};

export interface MockAnthropicOptions {
  frames?: number;
  frameDelayMs?: number;
  /** If set, answer 401 `authentication_error` unless `x-api-key` equals it. */
  requireApiKey?: string;
  /** Answer 400 when the `anthropic-version` header is missing (default true, as the real API). */
  requireVersion?: boolean;
  record?: boolean;
  port?: number;
}

export interface MockAnthropic {
  /** `http://127.0.0.1:PORT`: the base URL, as Anthropic's SDKs take it (no `/v1`). */
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  enqueue(...b: AnthropicMockBehaviour[]): void;
  setDefault(b: AnthropicMockBehaviour | undefined): void;
  waitForRequests(n: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  waitForAbort(options?: { requestId?: number; timeoutMs?: number }): Promise<RecordedRequest>;
  reset(): void;
  close(): Promise<void>;
}

const JSON_TYPE = 'application/json';
const SSE_TYPE = 'text/event-stream; charset=utf-8';
const MODELS = ['claude-sonnet-4-5', 'claude-haiku-4-5', 'claude-opus-4-1'];
const THINKING_TEXT = 'Let me think about that.';

/** Anthropic's documented error types per HTTP status. */
export function anthropicErrorFor(status: number): { type: string; message: string } {
  switch (status) {
    case 400:
      return { type: 'invalid_request_error', message: 'Invalid request (mock anthropic).' };
    case 401:
      return { type: 'authentication_error', message: 'invalid x-api-key' };
    case 403:
      return {
        type: 'permission_error',
        message: 'Your API key does not have permission to use the specified resource.',
      };
    case 404:
      return { type: 'not_found_error', message: 'The requested resource could not be found.' };
    case 413:
      return { type: 'request_too_large', message: 'Request exceeds the maximum allowed number of bytes.' };
    case 429:
      return {
        type: 'rate_limit_error',
        message: 'Number of requests has exceeded your per-minute rate limit.',
      };
    case 500:
      return { type: 'api_error', message: 'Internal server error' };
    case 529:
      return { type: 'overloaded_error', message: 'Overloaded' };
    default:
      return {
        type: status >= 500 ? 'api_error' : 'invalid_request_error',
        message: `Mock anthropic error (status ${status}).`,
      };
  }
}

function errorBody(seq: number, error: { type: string; message: string }): string {
  return JSON.stringify({ type: 'error', error, request_id: `req_mock_${seq}` });
}

// ---- plan: everything an answer needs, derived once per request --------------------

interface Plan {
  id: string;
  model: string;
  pieces: string[];
  tool: { id: string; name: string } | undefined;
  thinking: boolean;
  stopReason: 'end_turn' | 'max_tokens' | 'tool_use';
  inputTokens: number;
  cache: { read: number; creation: number };
}

type Block = JsonObject & { type?: unknown };

function blocksOf(content: unknown): Block[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  return Array.isArray(content) ? (content.filter(isObject) as Block[]) : [];
}

/** The words a message carries: its text blocks and the text of its tool results. */
function messageText(content: unknown): string {
  const parts: string[] = [];
  for (const block of blocksOf(content)) {
    if (block.type === 'text' && typeof block['text'] === 'string') parts.push(block['text']);
    else if (block.type === 'tool_result') parts.push(toolResultText(block));
  }
  return parts.join(' ');
}

function toolResultText(block: Block): string {
  const content = block['content'];
  return typeof content === 'string' ? content : contentText(blocksOf(content) as ContentPart[]);
}

/** The mock's tokenizer: Σ over messages and the system prompt of (word count + 3). */
function countInputTokens(body: JsonObject): number {
  let tokens = 0;
  const system = body['system'];
  if (system !== undefined) tokens += countWords(messageText(system)) + 3;
  for (const m of body['messages'] as JsonObject[]) tokens += countWords(messageText(m['content'])) + 3;
  return tokens;
}

function plan(
  seq: number,
  body: JsonObject,
  b: AnthropicMockBehaviour,
  rest: string | undefined,
  defaultFrames: number | undefined,
): Plan {
  const messages = body['messages'] as JsonObject[];
  const inputTokens = countInputTokens(body);
  const last = messages[messages.length - 1];
  const lastBlocks = last?.['role'] === 'user' ? blocksOf(last['content']) : [];
  const toolResults = lastBlocks.filter((x) => x.type === 'tool_result');
  const tools = Array.isArray(body['tools']) ? (body['tools'] as JsonObject[]) : [];
  const choice = isObject(body['tool_choice']) ? body['tool_choice'] : undefined;
  const frames = b.frames ?? defaultFrames;
  let tool: Plan['tool'];
  let pieces: string[];
  if (
    tools.length > 0 &&
    choice?.['type'] !== 'none' &&
    last?.['role'] === 'user' &&
    toolResults.length === 0
  ) {
    const name =
      choice?.['type'] === 'tool' && typeof choice['name'] === 'string'
        ? choice['name']
        : String(tools[0]?.['name'] ?? 'tool');
    tool = { id: `toolu_mock_${seq}`, name };
    pieces = codePointPieces(b.toolArguments ?? DEFAULT_TOOL_ARGUMENTS, frames ?? DEFAULT_TOOL_FRAMES);
  } else {
    let text: string;
    if (b.text !== undefined) text = b.text;
    else if (toolResults.length > 0) text = 'Echo: ' + toolResults.map(toolResultText).join(' ');
    else {
      let userText = rest;
      if (userText === undefined) {
        for (let i = messages.length - 1; i >= 0 && userText === undefined; i--) {
          if (messages[i]?.['role'] === 'user')
            userText = contentText(blocksOf(messages[i]?.['content']) as ContentPart[]);
        }
      }
      text = 'Echo: ' + (userText ?? '');
    }
    pieces = replyPieces(text, frames, b.text !== undefined);
  }
  let stopReason: Plan['stopReason'] = tool ? 'tool_use' : 'end_turn';
  const max = body['max_tokens'];
  if (typeof max === 'number' && pieces.length > max) {
    pieces = pieces.slice(0, max);
    stopReason = 'max_tokens';
  }
  const thinking = isObject(body['thinking']) && body['thinking']['type'] === 'enabled';
  return {
    id: b.completionId ?? `msg_mock_${seq}`,
    model: String(body['model']),
    pieces,
    tool,
    thinking,
    stopReason,
    inputTokens,
    cache: { read: b.cacheRead ?? 0, creation: b.cacheCreation ?? 0 },
  };
}

function usage(p: Plan, output: number): JsonObject {
  return {
    input_tokens: p.inputTokens,
    cache_creation_input_tokens: p.cache.creation,
    cache_read_input_tokens: p.cache.read,
    output_tokens: output,
    service_tier: 'standard',
  };
}

function messageJson(p: Plan): string {
  const content: JsonObject[] = [];
  if (p.thinking) content.push({ type: 'thinking', thinking: THINKING_TEXT, signature: 'sig_mock' });
  const joined = p.pieces.join('');
  if (p.tool) content.push({ type: 'tool_use', id: p.tool.id, name: p.tool.name, input: JSON.parse(joined) });
  else content.push({ type: 'text', text: joined });
  return JSON.stringify({
    id: p.id,
    type: 'message',
    role: 'assistant',
    model: p.model,
    content,
    stop_reason: p.stopReason,
    stop_sequence: null,
    usage: usage(p, p.pieces.length),
  });
}

interface StreamEvent {
  name: string;
  data: string;
  /** True for a content delta: counted by `afterFrames` and the gate. */
  frame?: boolean;
}

function streamEvents(p: Plan): StreamEvent[] {
  const ev = (name: string, value: JsonObject, frame = false): StreamEvent => ({
    name,
    data: JSON.stringify({ type: name, ...value }),
    frame,
  });
  const out: StreamEvent[] = [
    ev('message_start', {
      message: {
        id: p.id,
        type: 'message',
        role: 'assistant',
        model: p.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        // As the real API: a small placeholder here, the cumulative count in message_delta.
        usage: usage(p, 1),
      },
    }),
    ev('ping', {}),
  ];
  let index = 0;
  if (p.thinking) {
    out.push(ev('content_block_start', { index, content_block: { type: 'thinking', thinking: '' } }));
    out.push(
      ev('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: THINKING_TEXT } }),
    );
    out.push(ev('content_block_delta', { index, delta: { type: 'signature_delta', signature: 'sig_mock' } }));
    out.push(ev('content_block_stop', { index }));
    index++;
  }
  if (p.tool) {
    out.push(
      ev('content_block_start', {
        index,
        content_block: { type: 'tool_use', id: p.tool.id, name: p.tool.name, input: {} },
      }),
    );
    out.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } }));
    for (const piece of p.pieces) {
      out.push(
        ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: piece } }, true),
      );
    }
  } else {
    out.push(ev('content_block_start', { index, content_block: { type: 'text', text: '' } }));
    for (const piece of p.pieces) {
      out.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: piece } }, true));
    }
  }
  out.push(ev('content_block_stop', { index }));
  out.push(
    ev('message_delta', {
      delta: { stop_reason: p.stopReason, stop_sequence: null },
      usage: { output_tokens: p.pieces.length },
    }),
  );
  out.push(ev('message_stop', {}));
  return out;
}

/** Index just past the `n`th content frame (or of the first event, with no frames). */
function afterFrame(events: StreamEvent[], n: number): number {
  let seen = 0;
  for (let i = 0; i < events.length; i++) {
    if (events[i]?.frame && ++seen >= n) return i + 1;
  }
  return Math.min(events.length, 3);
}

function serialize(e: StreamEvent, le: LineEnding, variant?: MalformedSseVariant): string {
  switch (variant) {
    case 'noSpace':
      return 'event:' + e.name + le + 'data:' + e.data + le + le;
    case 'comments':
      return (
        ': keep-alive' +
        le +
        'id: 1' +
        le +
        'retry: 1000' +
        le +
        'event: ' +
        e.name +
        le +
        'data: ' +
        e.data +
        le +
        le
      );
    case 'multiLineData': {
      const cut = e.data.indexOf(',') + 1;
      return (
        'event: ' +
        e.name +
        le +
        'data: ' +
        e.data.slice(0, cut) +
        le +
        'data: ' +
        e.data.slice(cut) +
        le +
        le
      );
    }
    case 'garbage':
      return 'this is not sse' + le + 'event: ' + e.name + le + 'data: ' + e.data + le + le;
    default:
      return 'event: ' + e.name + le + 'data: ' + e.data + le + le;
  }
}

// ---- server -------------------------------------------------------------------------

type Exchange = ServerExchange<RecordedRequest>;

export async function startMockAnthropic(options: MockAnthropicOptions = {}): Promise<MockAnthropic> {
  const requireVersion = options.requireVersion !== false;
  const mock = new MockServer<AnthropicMockBehaviour, RecordedRequest>({
    name: 'mock-anthropic',
    record: options.record,
    bugResponse: (ex, message) => ({
      contentType: JSON_TYPE,
      body: errorBody(ex.seq, { type: 'api_error', message: `mock-anthropic bug: ${message}` }),
    }),
  });

  const head = (ex: Exchange, status: number, headers: Record<string, string>, b: MockBehaviour): void => {
    const all: Record<string, string> = { 'request-id': `req_mock_${ex.seq}`, ...headers };
    if (b.headers) for (const [k, v] of Object.entries(b.headers)) all[k.toLowerCase()] = v;
    ex.res.writeHead(status, all);
    mock.markHead(ex, status);
  };

  const sendBody = async (
    ex: Exchange,
    status: number,
    body: string,
    b: MockBehaviour,
    extra: Record<string, string> = {},
    contentType = JSON_TYPE,
  ): Promise<void> => {
    if (b.slowFirstByteMs && !(await sleep(b.slowFirstByteMs, ex.ac.signal))) return;
    const buf = Buffer.from(body);
    head(ex, status, { 'content-type': contentType, 'content-length': String(buf.length), ...extra }, b);
    if (b.delayMs) {
      ex.res.flushHeaders();
      if (!(await sleep(b.delayMs, ex.ac.signal))) return;
    }
    const pieces = b.splitAt ? splitBuffer(buf, b.splitAt) : [buf];
    for (let i = 0; i < pieces.length - 1; i++) {
      await flushWrite(ex.res, pieces[i]!);
      if (!(await sleep(b.frameDelayMs ?? 0, ex.ac.signal))) return;
    }
    ex.res.end(pieces[pieces.length - 1]);
  };

  const sendError = (ex: Exchange, status: number, b: MockBehaviour, extra?: Record<string, string>) => {
    const override = 'error' in b && b.error ? b.error : {};
    const detail = { ...anthropicErrorFor(status) };
    if (typeof override.type === 'string') detail.type = override.type;
    if (typeof override.message === 'string') detail.message = override.message;
    return sendBody(ex, status, errorBody(ex.seq, detail), b, extra);
  };

  /** Writes SSE text; `end` finishes the response. Returns false once the connection is gone. */
  const sendSse = async (
    ex: Exchange,
    chunks: string[],
    b: AnthropicMockBehaviour,
    end: boolean,
    holdAt?: number,
  ): Promise<boolean> => {
    const { res, ac } = ex;
    const gap = b.frameDelayMs ?? options.frameDelayMs ?? 0;
    res.flushHeaders();
    let pieces: Array<string | Buffer> = chunks;
    let hold = holdAt;
    if (b.splitAt) {
      pieces = splitBuffer(Buffer.from(chunks.join('')), b.splitAt);
      hold = undefined;
    } else if (gap <= 0 && hold === undefined) {
      pieces = [chunks.join('')];
    }
    for (let i = 0; i < pieces.length; i++) {
      if (i === hold && b.gate) {
        await Promise.race([
          b.gate.catch(() => undefined),
          new Promise((r) => ac.signal.addEventListener('abort', r, { once: true })),
        ]);
        if (ac.signal.aborted) return false;
      }
      if (i > 0 && gap > 0 && !(await sleep(gap, ac.signal))) return false;
      await flushWrite(res, pieces[i]!);
      if (ac.signal.aborted) return false;
    }
    if (end) res.end();
    return true;
  };

  const answerMessages = async (ex: Exchange, body: JsonObject, b: AnthropicMockBehaviour, rest?: string) => {
    const p = plan(ex.seq, body, b, rest, options.frames);
    const stream = body['stream'] === true;
    const le = b.lineEnding ?? '\n';
    const startSse = async (): Promise<boolean> => {
      if (b.slowFirstByteMs && !(await sleep(b.slowFirstByteMs, ex.ac.signal))) return false;
      head(ex, 200, { 'content-type': SSE_TYPE, 'cache-control': 'no-cache' }, b);
      return true;
    };
    switch (b.kind) {
      case 'malformedJson': {
        const json = messageJson(p);
        await sendBody(ex, 200, json.slice(0, Math.floor(json.length / 2)), b);
        return;
      }
      case 'resetMidStream': {
        if (!stream) {
          const buf = Buffer.from(messageJson(p));
          head(ex, 200, { 'content-type': JSON_TYPE, 'content-length': String(buf.length) }, b);
          await flushWrite(ex.res, buf.subarray(0, Math.floor(buf.length / 2)));
          if (!ex.ac.signal.aborted) mock.destroy(ex, b.rst === true);
          return;
        }
        if (!(await startSse())) return;
        const events = streamEvents(p);
        const cut = b.afterFrames === 0 ? 2 : afterFrame(events, b.afterFrames);
        if (
          await sendSse(
            ex,
            events.slice(0, cut).map((e) => serialize(e, le)),
            b,
            false,
          )
        )
          mock.destroy(ex, b.rst === true);
        return;
      }
      case 'errorInStream': {
        if (!(await startSse())) return;
        const events = streamEvents(p);
        const cut = b.afterFrames === 0 ? 2 : afterFrame(events, b.afterFrames ?? 1);
        const chunks = events.slice(0, cut).map((e) => serialize(e, le));
        const detail = { ...anthropicErrorFor(529), ...(b.error?.type ? { type: b.error.type } : {}) };
        if (b.error?.message) detail.message = b.error.message;
        chunks.push(serialize({ name: 'error', data: JSON.stringify({ type: 'error', error: detail }) }, le));
        await sendSse(ex, chunks, b, true);
        return;
      }
      case 'malformedSse': {
        if (!(await startSse())) return;
        const events = streamEvents(p);
        const variant = b.variant ?? 'invalidJson';
        if (variant === 'invalidJson') {
          const chunks = events.slice(0, 3).map((e) => serialize(e, le));
          const bad = events[3] ?? events[0]!;
          chunks.push(
            serialize({ name: bad.name, data: bad.data.slice(0, Math.floor(bad.data.length / 2)) }, le),
          );
          await sendSse(ex, chunks, b, true);
          return;
        }
        const kept = variant === 'noDone' ? events.slice(0, -1) : events;
        await sendSse(
          ex,
          kept.map((e) => serialize(e, le, variant)),
          b,
          true,
        );
        return;
      }
      default: {
        if (!stream) {
          await sendBody(ex, 200, messageJson(p), b);
          return;
        }
        if (!(await startSse())) return;
        const events = streamEvents(p);
        const holdAt = b.gate ? afterFrame(events, b.gateAfterFrames ?? 1) : undefined;
        await sendSse(
          ex,
          events.map((e) => serialize(e, le)),
          b,
          true,
          holdAt,
        );
      }
    }
  };

  /** Behaviours that answer the same on every route. Returns true if it answered. */
  const answerGeneric = async (ex: Exchange, b: AnthropicMockBehaviour): Promise<boolean> => {
    switch (b.kind) {
      case 'status':
        await sendError(ex, b.status, b);
        return true;
      case 'rateLimit': {
        const extra: Record<string, string> = {
          'anthropic-ratelimit-requests-limit': '50',
          'anthropic-ratelimit-requests-remaining': '0',
        };
        addRetryAfter(extra, b);
        await sendError(ex, 429, b, extra);
        return true;
      }
      case 'hang':
        return true;
      case 'hangAfterHeaders':
        head(ex, 200, { 'content-type': SSE_TYPE }, b);
        ex.res.flushHeaders();
        return true;
      case 'reset':
        await mock.resetBeforeAnswer(ex, b.slowFirstByteMs);
        return true;
      case 'redirect': {
        const location = b.location ?? mock.redirectTarget(ex);
        await sendBody(ex, b.status ?? 307, `Redirecting to ${location}\n`, b, { location }, 'text/plain');
        return true;
      }
      default:
        return false;
    }
  };

  const invalid = (ex: Exchange, status: number, message: string): Promise<void> => {
    if (ex.record) ex.record.behaviour = 'invalid';
    const type = status === 404 ? 'not_found_error' : 'invalid_request_error';
    return sendBody(ex, status, errorBody(ex.seq, { type, message }), {});
  };

  /** The checks the real API makes that a translation bug would trip. */
  const validate = (body: JsonObject, countOnly: boolean): string | undefined => {
    if (typeof body['model'] !== 'string') return 'model: Field required';
    // count_tokens takes the prompt alone: no max_tokens.
    if (!countOnly && typeof body['max_tokens'] !== 'number') return 'max_tokens: Field required';
    if (!Array.isArray(body['messages'])) return 'messages: Field required';
    const messages = body['messages'] as unknown[];
    let previousToolUses = new Set<string>();
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      if (!isObject(m) || (m['role'] !== 'user' && m['role'] !== 'assistant')) {
        return `messages.${i}.role: Input should be 'user' or 'assistant'`;
      }
      const toolUses = new Set<string>();
      const blocks = blocksOf(m['content']);
      for (let j = 0; j < blocks.length; j++) {
        const block = blocks[j]!;
        if (block.type === 'text' && m['role'] === 'assistant' && block['text'] === '' && blocks.length > 1) {
          return `messages.${i}.content.${j}.text: text content blocks must be non-empty`;
        }
        if (block.type === 'tool_use') toolUses.add(String(block['id']));
        if (block.type === 'tool_result' && !previousToolUses.has(String(block['tool_use_id']))) {
          return `messages.${i}.content.${j}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${String(block['tool_use_id'])}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`;
        }
        if (block.type === 'image') {
          const source = block['source'];
          const ok =
            isObject(source) &&
            ((source['type'] === 'base64' &&
              /^image\/(jpeg|png|gif|webp)$/.test(String(source['media_type'])) &&
              typeof source['data'] === 'string') ||
              (source['type'] === 'url' && typeof source['url'] === 'string'));
          if (!ok) return `messages.${i}.content.${j}.image.source: invalid image source`;
        }
      }
      previousToolUses = toolUses;
    }
    return undefined;
  };

  const dispatch = async (ex: Exchange, raw: string): Promise<void> => {
    const { req } = ex;
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const body = mock.receive(ex, raw);
    if (options.requireApiKey !== undefined && req.headers['x-api-key'] !== options.requireApiKey) {
      if (ex.record) ex.record.behaviour = 'auth';
      await sendBody(ex, 401, errorBody(ex.seq, anthropicErrorFor(401)), {});
      return;
    }
    if (requireVersion && !req.headers['anthropic-version']) {
      await invalid(ex, 400, 'anthropic-version: header is required');
      return;
    }
    const isCount = req.method === 'POST' && path.endsWith('/v1/messages/count_tokens');
    const isMessages = isCount || (req.method === 'POST' && path.endsWith('/v1/messages'));
    const isModels = req.method === 'GET' && path.endsWith('/v1/models');
    if (!isMessages && !isModels) {
      await invalid(ex, 404, `Not found: ${req.method} ${path}`);
      return;
    }
    let directive: ReturnType<typeof extractDirective>;
    if (isMessages) {
      if (!isObject(body)) {
        await invalid(ex, 400, 'There was an error parsing the body of your request as JSON.');
        return;
      }
      const problem = validate(body, isCount);
      if (problem) {
        await invalid(ex, 400, problem);
        return;
      }
      const messages = body['messages'] as JsonObject[];
      try {
        for (let i = messages.length - 1; i >= 0; i--) {
          if (messages[i]?.['role'] === 'user') {
            directive = extractDirective(contentText(blocksOf(messages[i]?.['content']) as ContentPart[]));
            break;
          }
        }
      } catch (err) {
        if (!(err instanceof DirectiveError)) throw err;
        await invalid(ex, 400, err.message);
        return;
      }
    }
    const b = mock.behaviourFor(ex, directive?.behaviour);
    if (await answerGeneric(ex, b)) return;
    if (isModels) {
      const data = MODELS.map((id) => ({
        type: 'model',
        id,
        display_name: id,
        created_at: '2025-01-01T00:00:00Z',
      }));
      await sendBody(
        ex,
        200,
        JSON.stringify({ data, has_more: false, first_id: MODELS[0], last_id: MODELS.at(-1) }),
        b,
      );
      return;
    }
    if (isCount) {
      const inputTokens = countInputTokens(body as JsonObject);
      await sendBody(ex, 200, JSON.stringify({ input_tokens: inputTokens }), b);
      return;
    }
    await answerMessages(ex, body as JsonObject, b, directive?.rest);
  };

  await mock.listen(options.port ?? 0, dispatch);
  return mock.face({});
}
