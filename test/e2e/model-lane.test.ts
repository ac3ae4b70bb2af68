/**
 * The model lane (server/lane/model-lane.ts) serves the plain POST
 * /v1/chat/completions without Fastify, and anything else is left to Fastify.
 *
 * Proved three ways: a server with the lane alone (Fastify's place taken by a
 * 599) answers the official SDK in full, JSON and stream, and hands back every
 * request that is not the plain one; and through the gateway, each request
 * the lane serves is answered as Fastify's route answers the same request
 * (sent with a query string, which the lane leaves to Fastify): status, body,
 * headers and the request's log line, errors included.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import { modelLane } from '../../src/server/lane/model-lane.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

const LIMIT = 4096;
const NOT_THE_LANE = 599;

let upstream: MockUpstream;
let gw: TestGateway;
/** The lane alone: what it does not take is answered 599. */
let laneOnly: http.Server;
let laneUrl: string;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

function send(
  base: string,
  options: { path?: string; method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const url = new URL(options.path ?? '/v1/chat/completions', base);
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method: options.method ?? 'POST', headers: options.headers ?? {}, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

const chatBody = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hello lane' }], ...extra });

before(async () => {
  upstream = await startMockUpstream();
  gw = await startTestGateway({
    config: {
      server: { body_limit_bytes: LIMIT },
      providers: { up: { type: 'openai', base_url: upstream.baseUrl, api_key: 'sk-upstream-lane' } },
      models: {
        gpt: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }], retries: { max: 0 } },
      },
    },
  });
  const lane = modelLane(gw.gateway.context);
  laneOnly = http.createServer((req, res) => {
    if (lane(req, res)) return;
    req.resume();
    res.writeHead(NOT_THE_LANE).end();
  });
  await new Promise<void>((resolve) => laneOnly.listen(0, '127.0.0.1', resolve));
  laneUrl = `http://127.0.0.1:${(laneOnly.address() as AddressInfo).port}`;
});

after(async () => {
  laneOnly?.closeAllConnections();
  await new Promise((resolve) => laneOnly?.close(resolve));
  await gw?.close();
  await upstream?.close();
});

beforeEach(() => upstream.reset());

describe('the lane alone', () => {
  test('serves the plain request in full: the OpenAI SDK, JSON and stream', async () => {
    const client = new OpenAI({ baseURL: `${laneUrl}/v1`, apiKey: gw.masterKey, maxRetries: 0 });
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt', messages: [{ role: 'user', content: 'hello lane' }] })
      .withResponse();
    assert.equal(data.model, 'gpt');
    assert.equal(typeof data.choices[0]?.message.content, 'string');
    assert.equal(response.headers.get('x-switchyard-provider'), 'up');
    assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.match(response.headers.get('x-request-id') ?? '', /^[A-Za-z0-9._:-]+$/);

    const stream = await client.chat.completions.create({
      model: 'gpt',
      messages: [{ role: 'user', content: 'hello lane' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.ok(text.length > 0);
    assert.equal(upstream.requests.length, 2, 'both reached the upstream');
  });

  test('leaves every other request to Fastify', async () => {
    const json = { 'content-type': 'application/json', authorization: `Bearer ${gw.masterKey}` };
    const body = chatBody();
    const cases: {
      what: string;
      path?: string;
      method?: string;
      headers: Record<string, string>;
      body?: string;
    }[] = [
      { what: 'a query string', path: '/v1/chat/completions?x=1', headers: json, body },
      { what: 'a trailing slash', path: '/v1/chat/completions/', headers: json, body },
      { what: 'another route', path: '/v1/embeddings', headers: json, body },
      { what: 'GET', method: 'GET', headers: { authorization: json.authorization } },
      { what: 'text/plain', headers: { ...json, 'content-type': 'text/plain' }, body },
      {
        what: 'JSON with another charset',
        headers: { ...json, 'content-type': 'application/json; charset=latin1' },
        body,
      },
      { what: 'no content type', headers: { authorization: json.authorization }, body },
      { what: 'a chunked body', headers: { ...json, 'transfer-encoding': 'chunked' }, body },
      { what: 'an empty body', headers: { ...json, 'content-length': '0' }, body: '' },
      { what: 'a body over the limit', headers: json, body: chatBody({ padding: 'x'.repeat(LIMIT) }) },
    ];
    for (const c of cases) {
      const answer = await send(laneUrl, c);
      assert.equal(answer.status, NOT_THE_LANE, c.what);
    }
    const state = gw.gateway.context.state;
    state.draining = true;
    try {
      assert.equal((await send(laneUrl, { headers: json, body })).status, NOT_THE_LANE, 'while draining');
    } finally {
      state.draining = false;
    }
    assert.equal(upstream.requests.length, 0);
  });
});

/** Header names an answer has, less the ones that differ between any two answers. */
function headerNames(answer: Answer): string[] {
  const varying = new Set(['date', 'x-request-id', 'content-length', 'keep-alive', 'connection']);
  return Object.keys(answer.headers)
    .filter((name) => !varying.has(name))
    .sort();
}

/** The answer's body with what differs between two answers of one request (ids, times) taken out. */
function comparable(answer: Answer): unknown {
  if (answer.text === '') return '';
  const contentType = answer.headers['content-type'] ?? '';
  if (!contentType.startsWith('application/json')) {
    // A stream: its events' data, without ids and times.
    return answer.text
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => line.slice(6))
      .map((data) => (data === '[DONE]' ? data : stripVarying(JSON.parse(data))));
  }
  return stripVarying(JSON.parse(answer.text));
}

function stripVarying(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripVarying);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [name, inner] of Object.entries(value)) {
    if (name === 'id' || name === 'created' || name === 'request_id') continue;
    out[name] = stripVarying(inner);
  }
  return out;
}

/** The request line the gateway logged for `requestId`, without what differs between two requests. */
function logLine(requestId: string): Record<string, unknown> {
  const lines = readFileSync(gw.logFile, 'utf8')
    .split('\n')
    .filter((line) => line.includes(`"requestId":"${requestId}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line['msg'] === 'request');
  assert.equal(lines.length, 1, `one request line for ${requestId}`);
  const { time: _time, ms, requestId: _id, pid: _pid, hostname: _host, ...rest } = lines[0]!;
  assert.equal(typeof ms, 'number');
  return rest;
}

describe('the lane answers as Fastify does', () => {
  const cases: { what: string; headers?: Record<string, string>; body: string }[] = [
    { what: 'a completion', body: chatBody() },
    { what: 'a stream', body: chatBody({ stream: true, stream_options: { include_usage: true } }) },
    { what: 'an unknown model', body: chatBody({ model: 'nope' }) },
    { what: 'a request that fails validation', body: JSON.stringify({ model: 'gpt', messages: 'hi' }) },
    { what: 'text that is not JSON', body: '{"model":' },
    { what: 'a prototype key', body: '{"model":"gpt","messages":[],"__proto__":{"x":1}}' },
    { what: 'no key', headers: { authorization: '' }, body: chatBody() },
    { what: 'a wrong key', headers: { authorization: 'Bearer sk-not-a-key' }, body: chatBody() },
    { what: 'an upstream failure', body: chatBody() },
  ];

  for (const c of cases) {
    test(c.what, async () => {
      const answers: Answer[] = [];
      const lines: Record<string, unknown>[] = [];
      for (const path of ['/v1/chat/completions', '/v1/chat/completions?via=fastify']) {
        if (c.what === 'an upstream failure') upstream.setDefault({ kind: 'status', status: 500 });
        const requestId = `lane-${Math.random().toString(36).slice(2)}`;
        const headers: Record<string, string> = {
          'content-type': 'application/json',
          authorization: `Bearer ${gw.masterKey}`,
          'x-request-id': requestId,
          ...c.headers,
        };
        if (headers['authorization'] === '') delete headers['authorization'];
        const answer = await send(gw.url, { path, headers, body: c.body });
        upstream.setDefault(undefined);
        assert.equal(answer.headers['x-request-id'], requestId);
        answers.push(answer);
        lines.push(logLine(requestId));
      }
      const [lane, fastify] = answers as [Answer, Answer];
      assert.equal(lane.status, fastify.status);
      assert.deepEqual(headerNames(lane), headerNames(fastify));
      assert.equal(lane.headers['content-type'], fastify.headers['content-type']);
      assert.deepEqual(comparable(lane), comparable(fastify));
      assert.deepEqual(lines[0], lines[1]);
    });
  }
});
