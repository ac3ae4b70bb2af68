/**
 * An answer's last byte waits for its usage rows to be durable: the ledger
 * spools a turn's rows together at the turn's end (group commit), so every
 * model route must hold its answer until `whenDurable` calls back. Here the
 * ledger's `whenDurable` holds its callbacks until the test releases them:
 * a JSON answer does not arrive, and a stream does not send `[DONE]`, before.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

describe('answers wait for durable usage', () => {
  let gw: TestGateway;
  const held: (() => void)[] = [];

  before(async () => {
    gw = await startTestGateway({
      config: {
        models: {
          mock: { targets: [{ provider: 'mock', model: 'mock-1' }] },
          cached: { targets: [{ provider: 'mock', model: 'mock-1' }], cache: { enabled: true, ttl_s: 3600 } },
        },
      },
    });
    const ledger = gw.gateway.context.ledger;
    ledger.whenDurable = (done) => {
      held.push(done);
    };
  });
  const release = () => {
    for (const done of held.splice(0)) done();
  };
  after(() => {
    release();
    return gw.close();
  });
  const chat = (stream: boolean, model = 'mock') =>
    request(`${gw.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.masterKey}` },
      body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
    });

  test('a JSON answer is sent only once its rows are durable', async () => {
    let answered = false;
    const pending = chat(false).then(async (res) => {
      answered = true;
      return { status: res.statusCode, body: (await res.body.json()) as { choices: unknown[] } };
    });
    await pollUntil('the answer waits on whenDurable', async () => held.length > 0);
    assert.equal(answered, false, 'no answer before the rows are durable');
    release();
    const { status, body } = await pending;
    assert.equal(status, 200);
    assert.equal(body.choices.length, 1);
  });

  test('an answer from the cache, JSON or replayed as a stream, waits for its row too', async () => {
    // The first request fills the cache (released as it waits); the next ones are hits.
    const filling = chat(false, 'cached');
    await pollUntil('the miss waits on whenDurable', async () => held.length > 0);
    release();
    assert.equal((await filling).headers['x-switchyard-cache'], 'miss');
    for (const stream of [false, true]) {
      let text = '';
      let complete = false;
      const reading = chat(stream, 'cached').then(async (res) => {
        assert.equal(res.headers['x-switchyard-cache'], 'hit');
        for await (const chunk of res.body) text += chunk;
        complete = true;
      });
      await pollUntil('the hit waits on whenDurable', async () => held.length > 0);
      assert.equal(complete, false, 'the answer is not complete before its row is durable');
      assert.ok(!text.includes('[DONE]'));
      release();
      await reading;
      assert.ok(stream ? text.trimEnd().endsWith('data: [DONE]') : text.includes('"choices"'));
    }
  });

  test('a stream sends [DONE] only once its rows are durable', async () => {
    const res = await chat(true);
    assert.equal(res.statusCode, 200);
    let text = '';
    const reading = (async () => {
      for await (const chunk of res.body) text += chunk;
    })();
    await pollUntil('the last frame waits on whenDurable', async () => held.length > 0);
    assert.ok(!text.includes('[DONE]'), 'no [DONE] before the rows are durable');
    release();
    await reading;
    assert.ok(text.trimEnd().endsWith('data: [DONE]'));
  });
});
