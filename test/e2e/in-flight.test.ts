/**
 * `switchyard_requests_in_flight`: a request counts from the moment the
 * gateway starts handling it until its response is finished or its
 * connection closes, once, streams included. Requests are held at a gate in
 * front of the upstream, so "in flight" is a fact when /metrics is read, not
 * a timing bet.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Gate, startGate } from '../fixtures/ops/gate.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';
import { metricValue } from '../helpers/resilience.ts';

let upstream: MockUpstream;
let held: Gate;
let aborted: Gate;
let gw: TestGateway;

const CHAT = '/v1/chat/completions';

before(async () => {
  upstream = await startMockUpstream();
  held = await startGate(upstream.baseUrl);
  aborted = await startGate(upstream.baseUrl);
  const provider = (url: string) => ({ type: 'openai', base_url: url, api_key: 'sk-upstream-in-flight' });
  gw = await startTestGateway({
    config: {
      providers: {
        held: provider(held.url),
        aborted: provider(aborted.url),
        open: provider(upstream.baseUrl),
      },
      models: {
        held: { targets: [{ provider: 'held', model: 'gpt-4o-mini' }] },
        aborted: { targets: [{ provider: 'aborted', model: 'gpt-4o-mini' }] },
        open: { targets: [{ provider: 'open', model: 'gpt-4o-mini' }] },
      },
    },
  });
});

after(async () => {
  await gw?.close();
  await held?.close();
  await aborted?.close();
  await upstream?.close();
});

function chat(model: string, options: { stream?: boolean; signal?: AbortSignal } = {}): Promise<Response> {
  return fetch(`${gw.url}${CHAT}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model,
      stream: options.stream ?? false,
      messages: [{ role: 'user', content: 'hi' }],
    }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

const inFlight = (): Promise<number | undefined> =>
  metricValue(gw, `switchyard_requests_in_flight{route="${CHAT}"}`);

/** Reads until `predicate` holds or `ms` pass (a closed socket reaches the server a little later). */
async function eventually(predicate: (value: number | undefined) => boolean, ms = 3_000) {
  const deadline = Date.now() + ms;
  let value = await inFlight();
  while (!predicate(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    value = await inFlight();
  }
  return value;
}

test('a request held upstream counts 1 while in flight and 0 once answered', async () => {
  const pending = chat('held');
  await held.waitFor(1);
  assert.equal(await inFlight(), 1);
  const second = chat('held');
  await held.waitFor(2);
  assert.equal(await inFlight(), 2);
  held.release();
  const answers = await Promise.all([pending, second]);
  for (const res of answers) {
    assert.equal(res.status, 200);
    await res.json();
  }
  assert.equal(await eventually((v) => v === 0), 0);
});

test('a stream counts until its last frame, not until its headers', async () => {
  upstream.enqueue({ frames: 4, frameDelayMs: 50, path: '/chat/completions' });
  const res = await chat('open', { stream: true });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read();
  assert.equal(await inFlight(), 1, 'headers and a first frame sent, the stream still open');
  while (!(await reader.read()).done) {
    // drain
  }
  assert.equal(await eventually((v) => v === 0), 0);
});

test('a client abort brings it back to 0, once (never below)', async () => {
  const controller = new AbortController();
  const pending = chat('aborted', { signal: controller.signal });
  await aborted.waitFor(1);
  assert.equal(await inFlight(), 1);
  controller.abort();
  await assert.rejects(pending);
  assert.equal(await eventually((v) => v === 0), 0);
  // The aborted request's remaining work (the upstream call, the 499) does not count it again.
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(await inFlight(), 0);
  const answer = await chat('open');
  assert.equal(answer.status, 200);
  await answer.json();
  assert.equal(await eventually((v) => v === 0), 0);
});
