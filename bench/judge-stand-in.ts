/**
 * A deterministic stand-in for a complexity judge model, for the benchmark:
 * an OpenAI-compatible upstream on 127.0.0.1 that answers a judge prompt with
 * the label the labelled set gives its request (found by the judge prompt's
 * hash), after a fixed delay chosen by the upstream model name
 * (`judge-<ms>ms`, e.g. `judge-200ms`); any other model gets a short answer
 * at once (the main request's target). It measures the judge's plumbing,
 * cache and fallback, not a model's judgement: it is always right.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { estimatePromptTokens } from '../src/core/token-estimate.ts';
import type { ChatRequest } from '../src/core/types.ts';
import { judgePromptHash, judgeRequestFor } from '../src/routing/complexity/judge-prompt.ts';
import type { ComplexityTier } from '../src/routing/model-table.ts';

export interface StandIn {
  baseUrl: string;
  /** Judge calls answered so far. */
  judged: number;
  close(): Promise<void>;
}

/** The answers: the label of each request's judge prompt, by hash. */
export function labelsByJudgePrompt(
  examples: ReadonlyArray<{ request: ChatRequest; tier: ComplexityTier }>,
): Map<string, ComplexityTier> {
  return new Map(examples.map((e) => [judgePromptHash(judgeRequestFor(e.request)), e.tier]));
}

export async function startJudgeStandIn(labels: ReadonlyMap<string, ComplexityTier>): Promise<StandIn> {
  const standIn: StandIn = { baseUrl: '', judged: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatRequest;
      const delay = /^judge-(\d+)ms$/.exec(body.model);
      let text = 'ok';
      if (delay !== null) {
        standIn.judged++;
        text = labels.get(judgePromptHash(body)) ?? 'unknown prompt';
      }
      const prompt = estimatePromptTokens(body);
      const answer = JSON.stringify({
        id: 'chatcmpl-stand-in',
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
        usage: { prompt_tokens: prompt, completion_tokens: 1, total_tokens: prompt + 1 },
      });
      const send = (): void => {
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(answer),
        });
        res.end(answer);
      };
      const ms = delay === null ? 0 : Number(delay[1]);
      if (ms > 0) setTimeout(send, ms);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  standIn.baseUrl = `http://127.0.0.1:${port}/v1`;
  standIn.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return standIn;
}
