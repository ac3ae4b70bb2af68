/**
 * The requests every path of `npm run bench` is measured with, and their
 * checks: a ~1 KB chat completion and a 20-frame stream from the mock
 * upstream (test/helpers/mock-upstream.ts). Every response is checked, so a
 * proxy that answers fast but wrong counts errors, not speed.
 */
import type { Check } from './load.ts';

export const STREAM_FRAMES = 20;

const LOREM =
  'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(
    ' ',
  );
/** `n` words; the mock echoes them back as `Echo: <words>`, one stream frame per word. */
const words = (n: number): string => Array.from({ length: n }, (_, i) => LOREM[i % LOREM.length]).join(' ');
export const MODEL = 'gpt-4o-mini';
const JSON_PROMPT = words(85); // a ~1 KB chat.completion
const STREAM_PROMPT = words(STREAM_FRAMES - 1); // "Echo:" + 19 words = 20 content frames
const JSON_REPLY = `Echo: ${JSON_PROMPT}`;
const STREAM_REPLY = `Echo: ${STREAM_PROMPT}`;

export const jsonBody = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: JSON_PROMPT }] });
export const streamBody = JSON.stringify({
  model: MODEL,
  stream: true,
  messages: [{ role: 'user', content: STREAM_PROMPT }],
});

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
