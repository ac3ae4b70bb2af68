/**
 * How a JSON request body is read and refused (server/json-body.ts and
 * Fastify's body reading under it), over raw HTTP because the framing is the
 * point: chunked bodies (no declared length), bodies sent in pieces, bodies
 * that never finish, media type spellings, and a body refused while the
 * client is still sending it.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';
import { ledgerRows } from '../helpers/resilience.ts';

const LIMIT = 2048;

let upstream: MockUpstream;
let gw: TestGateway;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/**
 * Sends a request whose body goes out in `pieces` (each its own write; no
 * Content-Length unless `headers` says one, so chunked otherwise) and
 * resolves with the answer, whether or not the body was finished: `finish`
 * false leaves the request open after the last piece.
 */
function send(
  path: string,
  headers: Record<string, string>,
  pieces: string[],
  finish = true,
): Promise<Answer & { request: http.ClientRequest }> {
  const { port } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port: Number(port), method: 'POST', path, headers, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : {},
            request,
          }),
        );
      },
    );
    // A refusal may close the connection while pieces are still going out.
    request.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') reject(error);
    });
    for (const piece of pieces) request.write(piece);
    if (finish) request.end();
  });
}

const auth = () => ({ authorization: `Bearer ${gw.masterKey}` });
const chat = (content: string) => JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content }] });
const errorOf = (answer: Answer) => answer.body['error'] as Record<string, unknown>;

before(async () => {
  upstream = await startMockUpstream();
  gw = await startTestGateway({
    config: {
      server: { body_limit_bytes: LIMIT },
      providers: { up: { type: 'openai', base_url: upstream.baseUrl, api_key: 'sk-upstream-json-body' } },
      models: { gpt: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }], retries: { max: 0 } } },
    },
  });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
});

beforeEach(() => upstream.reset());

describe('a JSON body read by the gateway', () => {
  test('a chunked body in several pieces is read whole and served', async () => {
    const body = chat('pieces of a prompt');
    const pieces = [body.slice(0, 7), body.slice(7, 30), body.slice(30)];
    const answer = await send(
      '/v1/chat/completions',
      { ...auth(), 'content-type': 'application/json' },
      pieces,
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const [seen] = await upstream.waitForRequests(1);
    const sent = seen!.body as { messages: Array<{ content: string }> };
    assert.equal(sent.messages[0]?.content, 'pieces of a prompt');
  });

  test('the media type matches in any case and with parameters', async () => {
    for (const type of [
      'Application/JSON; charset=UTF-8',
      'application/json;charset=utf-8',
      ' application/json ',
    ]) {
      const answer = await send('/v1/chat/completions', { ...auth(), 'content-type': type }, [chat(type)]);
      assert.equal(answer.status, 200, `${type}: ${JSON.stringify(answer.body)}`);
    }
  });

  test('a chunked body past the limit: 413 while it is still coming, the connection closed after', async () => {
    const piece = `{"model":"gpt","messages":[{"role":"user","content":"${'x'.repeat(LIMIT)}`;
    // Never finished: the refusal must not wait for the end of a body it will not read.
    const answer = await send(
      '/v1/chat/completions',
      { ...auth(), 'content-type': 'application/json' },
      [piece],
      false,
    );
    answer.request.destroy();
    assert.equal(answer.status, 413);
    assert.equal(errorOf(answer)['code'], 'request_too_large');
    assert.equal(answer.headers['connection'], 'close');
    assert.equal(upstream.requests.length, 0);
  });

  test('a declared length past the limit is refused before any of the body is read', async () => {
    const answer = await send(
      '/v1/chat/completions',
      { ...auth(), 'content-type': 'application/json', 'content-length': String(LIMIT + 1) },
      ['{"model":'],
      false,
    );
    answer.request.destroy();
    assert.equal(answer.status, 413);
    assert.equal(errorOf(answer)['code'], 'request_too_large');
  });

  test('a request failing authentication is refused without its body being read', async () => {
    const answer = await send(
      '/v1/chat/completions',
      {
        authorization: 'Bearer sk-not-a-key-0123456789',
        'content-type': 'application/json',
        'content-length': '500',
      },
      ['{"model":"gpt",'],
      false,
    );
    answer.request.destroy();
    assert.equal(answer.status, 401);
  });

  test('not JSON, other media types, and an empty body: each its clear client error', async () => {
    const bad = await send('/v1/chat/completions', { ...auth(), 'content-type': 'application/json' }, [
      '{"model":',
    ]);
    assert.equal(bad.status, 400);
    assert.equal(errorOf(bad)['code'], 'invalid_request');
    assert.equal(errorOf(bad)['param'], 'body');

    const xml = await send('/v1/chat/completions', { ...auth(), 'content-type': 'application/xml' }, [
      '<a/>',
    ]);
    assert.equal(xml.status, 415);
    assert.equal(errorOf(xml)['code'], 'unsupported_media_type');

    // Fastify reads text/plain as a string, which the route refuses as not an object.
    const text = await send('/v1/chat/completions', { ...auth(), 'content-type': 'text/plain' }, [
      chat('plain'),
    ]);
    assert.equal(text.status, 400);
    assert.equal(errorOf(text)['param'], 'body');

    const empty = await send('/v1/chat/completions', { ...auth(), 'content-type': 'application/json' }, []);
    assert.equal(empty.status, 400);
    assert.equal(upstream.requests.length, 0);
  });

  test('a client gone mid-body: nothing sent upstream, nothing billed, the next request served', async () => {
    const before = (await ledgerRows(gw)).length;
    const { port } = new URL(gw.url);
    await new Promise<void>((resolve) => {
      const request = http.request({
        host: '127.0.0.1',
        port: Number(port),
        method: 'POST',
        path: '/v1/chat/completions',
        headers: { ...auth(), 'content-type': 'application/json', 'content-length': '400' },
        agent: false,
      });
      request.on('error', () => resolve());
      request.on('close', () => resolve());
      // Half a body, then the connection goes.
      request.write('{"model":"gpt","messages":[', () => request.destroy());
    });
    const next = await send('/v1/chat/completions', { ...auth(), 'content-type': 'application/json' }, [
      chat('after'),
    ]);
    assert.equal(next.status, 200);
    const seen = await upstream.waitForRequests(1);
    assert.equal(seen.length, 1, 'only the request after it reached the upstream');
    assert.equal((await ledgerRows(gw)).length, before + 1);
  });
});
