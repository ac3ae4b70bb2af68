/**
 * While the gateway drains (SIGTERM), a request that still reaches it on a
 * kept-alive connection is refused with 503 in its own API's error shape
 * (OpenAI's on OpenAI routes, Anthropic's on /v1/messages), with
 * `Connection: close`, not in Fastify's default body; the request in flight
 * still completes.
 *
 * The requests are pipelined on one socket behind a request held at a gate,
 * so "arrives while draining" is a fact, not a timing bet.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { type Gate, startGate } from '../fixtures/ops/gate.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

let upstream: MockUpstream;
let gate: Gate;
let gw: TestGateway;

before(async () => {
  upstream = await startMockUpstream();
  gate = await startGate(upstream.baseUrl);
  gw = await startTestGateway({
    config: {
      providers: { up: { type: 'openai', base_url: `${gate.url}/v1`, api_key: 'sk-upstream-draining-test' } },
      models: { gpt: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }] } },
    },
  });
});

after(async () => {
  await gw?.close();
  await gate?.close();
  await upstream?.close();
});

function post(path: string, body: string, headers: string): string {
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Splits the bytes of consecutive HTTP/1.1 responses (each with a Content-Length). */
function parseResponses(text: string): Parsed[] {
  const out: Parsed[] = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
    const headers = Object.fromEntries(
      lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
    );
    const length = Number(headers['content-length']);
    const bodyStart = end + 4;
    out.push({
      status: Number(statusLine!.split(' ')[1]),
      headers,
      body: Buffer.from(rest.slice(bodyStart)).subarray(0, length).toString(),
    });
    rest = Buffer.from(rest.slice(bodyStart)).subarray(length).toString();
  }
  return out;
}

/** A raw socket that collects everything the gateway answers on it. */
function openSocket(): { write(data: string): void; closed: Promise<string> } {
  const socket = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    received += d;
  });
  return {
    write: (data) => socket.write(data),
    closed: new Promise((resolve) => socket.on('close', () => resolve(received))),
  };
}

test('requests arriving while draining get a 503 in their API shape; the ones in flight complete', async () => {
  const auth = `authorization: Bearer ${gw.masterKey}\r\n`;
  const held = (content: string) =>
    post('/v1/chat/completions', `{"model":"gpt","messages":[{"role":"user","content":"${content}"}]}`, auth);
  const openai = openSocket();
  const anthropic = openSocket();
  openai.write(held('held one'));
  anthropic.write(held('held two'));
  await gate.waitFor(2);

  const closing = gw.gateway.close();
  assert.equal(gw.gateway.context.state.draining, true);
  // Pipelined behind the held requests: they arrive while the gateway drains.
  openai.write(held('late'));
  anthropic.write(
    post(
      '/v1/messages',
      '{"model":"gpt","max_tokens":8,"messages":[{"role":"user","content":"late"}]}',
      auth,
    ),
  );
  gate.release();
  const [openaiText, anthropicText] = await Promise.all([openai.closed, anthropic.closed]);
  await closing;

  const [heldOne, lateOpenAI] = parseResponses(openaiText);
  const [heldTwo, lateAnthropic] = parseResponses(anthropicText);
  assert.equal(heldOne?.status, 200, openaiText);
  assert.match(JSON.parse(heldOne!.body).choices[0].message.content, /held one/);
  assert.equal(heldTwo?.status, 200, anthropicText);
  assert.match(JSON.parse(heldTwo!.body).choices[0].message.content, /held two/);

  assert.equal(lateOpenAI?.status, 503, openaiText);
  assert.equal(lateOpenAI!.headers['connection'], 'close');
  const openaiError = JSON.parse(lateOpenAI!.body).error;
  assert.equal(openaiError.code, 'shutting_down');
  assert.equal(openaiError.type, 'service_unavailable');

  assert.equal(lateAnthropic?.status, 503, anthropicText);
  const anthropicBody = JSON.parse(lateAnthropic!.body);
  assert.equal(anthropicBody.type, 'error');
  assert.equal(anthropicBody.error.type, 'overloaded_error');
  assert.match(anthropicBody.error.message, /shutting down/);

  assert.equal(upstream.requests.length, 2, 'only the held requests reached the upstream');
});
