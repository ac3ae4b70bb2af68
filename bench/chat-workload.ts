/**
 * The requests every path of `npm run bench` is measured with, and their
 * checks, the same as the side-by-side harness sends: a short chat request
 * (a system and a user message, ~250 B) answered with a ~1 KB canned
 * completion, and the same request streamed: STREAM_FRAMES content frames
 * from bench/bench-upstream.ts. Every response is checked, so a proxy that
 * answers fast but wrong counts errors, not speed.
 */
import type { Check, Target } from './load.ts';

export const STREAM_FRAMES = 20;
export const MODEL = 'gpt-4o-mini';

/** What the bench upstream answers: ~1 KB of JSON with it. */
export const COMPLETION_TEXT =
  'This is a deterministic completion used to benchmark LLM gateways. It is long enough to look like a ' +
  'real short answer from a chat model, with a few sentences of filler so the response body is about ' +
  'one kilobyte, similar to production traffic.';
/** The streamed answer, one word per content frame. */
export const STREAM_WORDS = COMPLETION_TEXT.split(' ')
  .slice(0, STREAM_FRAMES)
  .map((w) => `${w} `);
const JSON_REPLY = COMPLETION_TEXT;
const STREAM_REPLY = STREAM_WORDS.join('');

const messages = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Say this is a benchmark test, in one short paragraph.' },
];
export const jsonBody = JSON.stringify({ model: MODEL, messages, max_tokens: 64, temperature: 0 });
export const streamBody = JSON.stringify({
  model: MODEL,
  messages,
  max_tokens: 64,
  temperature: 0,
  stream: true,
});

/** A chat completion request to `origin` as `key` (the ~1 KB workload unless `body` says otherwise). */
export function chatTarget(
  name: string,
  origin: string,
  key: string,
  body: string = jsonBody,
  check: Check = checkJson,
): Target {
  return {
    name,
    origin,
    path: '/v1/chat/completions',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body,
    check,
  };
}

export const checkJson: Check = (status, headers, body) => {
  if (status !== 200) return `HTTP ${status}`;
  if (!String(headers['content-type']).startsWith('application/json')) return 'not JSON';
  let obj: {
    object?: unknown;
    model?: unknown;
    choices?: { message?: { content?: unknown } }[];
    usage?: { total_tokens?: unknown };
  };
  try {
    obj = JSON.parse(body);
  } catch {
    return 'invalid JSON body';
  }
  if (obj.object !== 'chat.completion') return 'object != chat.completion';
  if (obj.model !== MODEL) return 'unexpected model';
  if (obj.choices?.[0]?.message?.content !== JSON_REPLY) return 'unexpected content';
  if (typeof obj.usage?.total_tokens !== 'number') return 'no usage';
  return undefined;
};

export const checkStream: Check = (status, headers, body) => {
  if (status !== 200) return `HTTP ${status}`;
  if (!String(headers['content-type']).startsWith('text/event-stream')) return 'not SSE';
  let content = '';
  let frames = 0;
  let done = false;
  for (const event of body.split(/\r?\n\r?\n/)) {
    const data = event
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trimStart())
      .join('\n');
    if (data === '') continue;
    if (done) return 'data after [DONE]';
    if (data === '[DONE]') {
      done = true;
      continue;
    }
    let chunk: { object?: unknown; choices?: { delta?: { content?: unknown } }[] };
    try {
      chunk = JSON.parse(data);
    } catch {
      return 'invalid JSON frame';
    }
    if (chunk.object !== 'chat.completion.chunk') return 'frame is not a chunk';
    const piece = chunk.choices?.[0]?.delta?.content;
    if (typeof piece === 'string' && piece.length > 0) {
      frames++;
      content += piece;
    }
  }
  if (!done) return 'no [DONE]';
  if (frames !== STREAM_FRAMES) return `expected ${STREAM_FRAMES} content frames, got ${frames}`;
  if (content !== STREAM_REPLY) return 'unexpected streamed content';
  return undefined;
};
