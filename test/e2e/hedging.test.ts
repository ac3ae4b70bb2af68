/**
 * Hedged requests: a target slow to send its first byte is raced by a second
 * attempt on the next candidate; the loser is aborted and still has its
 * ledger row.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';
import { chat, ledgerRows, metricValue } from '../helpers/resilience.ts';

const apiKey = 'sk-CANARY-hedging-0123456789';
registerSecret(apiKey);

describe('hedging', () => {
  let slow: MockUpstream;
  let fast: MockUpstream;
  let gw: TestGateway;

  before(async () => {
    [slow, fast] = await Promise.all([startMockUpstream(), startMockUpstream()]);
    const provider = (m: MockUpstream) => ({ type: 'openai', base_url: m.baseUrl, api_key: apiKey });
    const targets = [
      { provider: 'slow', model: 'gpt-4o-mini' },
      { provider: 'fast', model: 'gpt-4o-mini' },
    ];
    gw = await startTestGateway({
      config: {
        providers: { slow: provider(slow), fast: provider(fast) },
        models: {
          hedged: { targets, hedging: { enabled: true, delay_ms: 50 }, timeouts: { first_byte_ms: 30_000 } },
          // A delay far beyond any answer here: the second target is never needed.
          patient: { targets, hedging: { enabled: true, delay_ms: 600_000 } },
        },
      },
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([slow.close(), fast.close()]);
  });

  for (const stream of [false, true]) {
    test(`${stream ? 'stream' : 'JSON'}: a slow first byte is hedged; the hedge wins, the loser is aborted and billed`, async () => {
      slow.reset();
      fast.reset();
      slow.enqueue({ kind: 'slowFirstByte', ms: 30_000 });
      const result = await chat(gw.url, gw.masterKey, 'hedged', 'race me', stream ? { stream: true } : {});
      assert.equal(result.status, 200);
      assert.equal(result.target, 'fast/gpt-4o-mini');
      assert.equal(result.attempts, 2);
      const aborted = await slow.waitForAbort();
      assert.equal(aborted.clientAborted, true, 'the losing upstream call was cancelled');
      assert.equal(fast.requests.length, 1);
    });
  }

  test('the losing attempt has a hedge_lost ledger row with an estimated prompt', async () => {
    const rows = await ledgerRows(gw);
    const lost = rows.filter((r) => r.status === 'hedge_lost');
    assert.equal(lost.length, 2, 'one per hedged request above');
    for (const row of lost) {
      assert.equal(row.provider, 'slow');
      assert.equal(row.error_code, 'hedge_lost');
      assert.ok(row.prompt_tokens > 0);
      assert.equal(row.usage_source, 'estimated');
      const winner = rows.find((r) => r.request_id === row.request_id && r.status === 'ok');
      assert.equal(winner?.provider, 'fast');
    }
    assert.equal(await metricValue(gw, 'switchyard_hedges_total{outcome="won"}'), 2);
  });

  test('no hedge when the first target answers before the delay', async () => {
    slow.reset();
    fast.reset();
    const result = await chat(gw.url, gw.masterKey, 'patient');
    assert.equal(result.status, 200);
    assert.equal(result.target, 'slow/gpt-4o-mini');
    assert.equal(result.attempts, 1);
    assert.equal(fast.requests.length, 0);
  });
});
