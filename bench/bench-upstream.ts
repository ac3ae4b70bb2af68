/**
 * The upstream `npm run bench` measures against: an OpenAI chat endpoint
 * built to never be the bottleneck, answering every request with the same
 * canned completion (bench/chat-workload.ts), as the side-by-side harness's
 * mock does. The full mock (test/helpers/mock-upstream.ts: directives, echo,
 * recording) cost ~55 µs of CPU a request, so it, not the proxy, saturated
 * the core it shares with the load generator, and the pass-through was
 * measured below its real rate.
 *
 *   node bench/bench-upstream.ts [--port 0] [--frame-interval-ms 5]
 *
 * JSON: a ~1 KB chat.completion with usage. `"stream": true`: a role frame,
 * STREAM_FRAMES content frames, a finish frame, a usage frame when
 * `stream_options.include_usage` asks for it, then `[DONE]`, one write each,
 * `--frame-interval-ms` apart (the harness streams 5 ms apart).
 * Prints `{"port":N}` once listening; stops on SIGTERM/SIGINT.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { COMPLETION_TEXT, STREAM_FRAMES, STREAM_WORDS } from './chat-workload.ts';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' }, 'frame-interval-ms': { type: 'string', default: '5' } },
});
const intervalMs = Number(values['frame-interval-ms']);
const created = Math.floor(Date.now() / 1000);
const ID = 'chatcmpl-bench0000000000000000000001';
const usage = { prompt_tokens: 23, completion_tokens: 61, total_tokens: 84 };

const completions = new Map<string, Buffer>();
function completion(model: string): Buffer {
  let body = completions.get(model);
  if (body === undefined) {
    body = Buffer.from(
      JSON.stringify({
        id: ID,
        object: 'chat.completion',
        created,
        model,
        system_fingerprint: 'fp_bench',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: COMPLETION_TEXT, refusal: null },
            logprobs: null,
            finish_reason: 'stop',
          },
        ],
        usage: {
          ...usage,
          prompt_tokens_details: { cached_tokens: 0 },
          completion_tokens_details: { reasoning_tokens: 0 },
        },
      }),
    );
    if (completions.size < 16) completions.set(model, body);
  }
  return body;
}

function frame(model: string, delta: object, finish: string | null): string {
  return `data: ${JSON.stringify({
    id: ID,
    object: 'chat.completion.chunk',
    created,
    model,
    system_fingerprint: 'fp_bench',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  })}\n\n`;
}

function stream(res: http.ServerResponse, model: string, includeUsage: boolean): void {
  const frames = [frame(model, { role: 'assistant', content: '' }, null)];
  for (let i = 0; i < STREAM_FRAMES; i++) frames.push(frame(model, { content: STREAM_WORDS[i] }, null));
  frames.push(frame(model, {}, 'stop'));
  if (includeUsage) {
    frames.push(
      `data: ${JSON.stringify({ id: ID, object: 'chat.completion.chunk', created, model, choices: [], usage: { prompt_tokens: 23, completion_tokens: STREAM_FRAMES, total_tokens: 23 + STREAM_FRAMES } })}\n\n`,
    );
  }
  frames.push('data: [DONE]\n\n');
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let next = 0;
  const tick = (): void => {
    if (res.destroyed) return;
    res.write(frames[next++]);
    if (next === frames.length) res.end();
    else setTimeout(tick, intervalMs);
  };
  tick();
}

const server = http.createServer({ keepAliveTimeout: 72_000 }, (req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => {
    let body: { model?: unknown; stream?: unknown; stream_options?: { include_usage?: unknown } };
    try {
      body = JSON.parse(Buffer.concat(parts).toString('utf8'));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"invalid JSON","type":"invalid_request_error"}}');
      return;
    }
    const model = typeof body.model === 'string' ? body.model : 'gpt-4o-mini';
    if (body.stream === true) {
      stream(res, model, body.stream_options?.include_usage === true);
      return;
    }
    const answer = completion(model);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
    res.end(answer);
  });
});

server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
const stop = (): void => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
