/**
 * The request log line (one JSON line per request: who, what, what served it,
 * tokens, cost, cache, latency; never the key), its sampling (successful lines
 * only), and the audit log: each admin action as an `audit: true` line and a
 * row read back at GET /admin/audit. Every key secret made here is registered,
 * so the test runner's final scan proves none reached a log line.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

// biome-ignore lint/suspicious/noExplicitAny: JSON answers and log lines, read field by field in assertions
type Json = Record<string, any>;

async function call(gw: TestGateway, key: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, requestId: res.headers.get('x-request-id'), body: (await res.json()) as Json };
}

function logLines(gw: TestGateway): Json[] {
  return readFileSync(gw.logFile, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Json);
}

describe('request log lines and the audit log', () => {
  let upstream: MockUpstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startMockUpstream();
    gw = await startTestGateway({
      config: {
        providers: { up: { type: 'openai', base_url: upstream.baseUrl, api_key: 'sk-upstream-logs-test' } },
        models: { gpt: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }], cache: { enabled: true } } },
      },
    });
  });
  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  test('a model request: one line with key name, model, provider, status, tokens, cost, cache and latency', async () => {
    const created = await call(gw, gw.masterKey, 'POST', '/admin/keys', { name: 'logged-app' });
    const secret = created.body['key'] as string;
    registerSecret(secret);
    const body = { model: 'gpt', messages: [{ role: 'user', content: 'log me' }] };
    const first = await call(gw, secret, 'POST', '/v1/chat/completions', body);
    const second = await call(gw, secret, 'POST', '/v1/chat/completions', body);
    assert.equal(first.status, 200);
    const lines = logLines(gw).filter((l) => l['msg'] === 'request');
    const miss = lines.find((l) => l['requestId'] === first.requestId);
    const hit = lines.find((l) => l['requestId'] === second.requestId);
    assert.ok(miss && hit);
    assert.equal(miss['keyName'], 'logged-app');
    assert.equal(miss['keyId'], created.body['id']);
    assert.equal(miss['model'], 'gpt');
    assert.equal(miss['provider'], 'up');
    assert.equal(miss['status'], 200);
    assert.equal(miss['route'], '/v1/chat/completions');
    assert.ok(miss['tokens'].prompt > 0 && miss['tokens'].completion > 0);
    assert.ok(miss['costUsd'] > 0);
    assert.equal(miss['cache'], 'miss');
    assert.equal(typeof miss['ms'], 'number');
    assert.equal(hit['cache'], 'hit');
    assert.equal(hit['costUsd'], 0);
    assert.equal(hit['provider'], 'cache');
    // The key is never on a line (the runner scans every log for it too).
    assert.ok(!readFileSync(gw.logFile, 'utf8').includes(secret));
  });

  test('admin actions: an audit line each, and GET /admin/audit newest first, paged', async () => {
    const team = await call(gw, gw.masterKey, 'POST', '/admin/teams', {
      name: 'research',
      budget: { monthly_usd: 50 },
    });
    const key = await call(gw, gw.masterKey, 'POST', '/admin/keys', { name: 'audited', tier: 'free' });
    registerSecret(key.body['key'] as string);
    const keyId = key.body['id'] as string;
    await call(gw, gw.masterKey, 'PATCH', `/admin/keys/${keyId}`, {
      budget: { daily_usd: 5 },
      tier: null,
      team_id: team.body['id'],
      metadata: { owner: 'someone' },
    });
    await call(gw, gw.masterKey, 'PATCH', `/admin/teams/${team.body['id']}`, { budget: { monthly_usd: 80 } });
    const revoked = await call(gw, gw.masterKey, 'DELETE', `/admin/keys/${keyId}`);
    assert.equal(revoked.status, 200);

    const audit = await call(gw, gw.masterKey, 'GET', `/admin/audit?target_id=${keyId}`);
    assert.equal(audit.status, 200);
    const actions = (audit.body['data'] as Json[]).map((r) => r['action']);
    assert.deepEqual(actions, ['key.revoke', 'key.update', 'key.create']);
    const [revoke, update, create] = audit.body['data'] as Json[];
    for (const row of [revoke!, update!, create!]) {
      assert.equal(row['actor'], 'master');
      assert.equal(row['target_type'], 'key');
      assert.match(row['at'], /^\d{4}-\d\d-\d\dT/);
    }
    assert.equal(revoke!['request_id'], revoked.requestId);
    assert.deepEqual(update!['details'].changed, {
      budget: { daily_usd: 5 },
      tier: null,
      team_id: team.body['id'],
    });
    assert.deepEqual(update!['details'].metadata_fields, ['owner'], 'metadata values are not recorded');
    assert.equal(create!['details'].name, 'audited');
    assert.equal(create!['details'].tier, 'free');
    assert.ok(!JSON.stringify(audit.body).includes(key.body['key']));

    const teamRows = await call(gw, gw.masterKey, 'GET', `/admin/audit?action=team.update`);
    assert.deepEqual((teamRows.body['data'] as Json[])[0]!['details'].changed, {
      budget: { monthly_usd: 80 },
    });

    // Paging: one at a time, newest first, the cursor carrying on.
    const page1 = await call(gw, gw.masterKey, 'GET', `/admin/audit?limit=1&target_id=${keyId}`);
    const page2 = await call(
      gw,
      gw.masterKey,
      'GET',
      `/admin/audit?limit=1&target_id=${keyId}&cursor=${page1.body['next_cursor']}`,
    );
    assert.equal(page1.body['data'][0].action, 'key.revoke');
    assert.equal(page2.body['data'][0].action, 'key.update');

    const lines = logLines(gw).filter((l) => l['audit'] === true);
    for (const action of ['team.create', 'key.create', 'key.update', 'team.update', 'key.revoke']) {
      const line = lines.find((l) => l['action'] === action);
      assert.ok(line, `audit line for ${action}`);
      assert.equal(line['actor'], 'master');
    }
  });

  test('/admin/audit: master key only, and bad parameters refused in the OpenAI error shape', async () => {
    assert.equal((await fetch(`${gw.url}/admin/audit`)).status, 401);
    const bad = await call(gw, gw.masterKey, 'GET', '/admin/audit?limit=0');
    assert.equal(bad.status, 400);
    assert.equal(bad.body['error'].param, 'limit');
    const cursor = await call(gw, gw.masterKey, 'GET', '/admin/audit?cursor=nope');
    assert.equal(cursor.status, 400);
    assert.equal(cursor.body['error'].param, 'cursor');
  });
});

describe('request log sampling', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startTestGateway({ config: { logging: { sample_rate: 0 } } });
  });
  after(() => gw?.close());

  test('sample_rate 0: no successful request line, every error line, every audit line', async () => {
    const ok = await call(gw, gw.masterKey, 'POST', '/v1/chat/completions', {
      model: 'mock',
      messages: [{ role: 'user', content: 'unsampled' }],
    });
    assert.equal(ok.status, 200);
    const missing = await call(gw, gw.masterKey, 'POST', '/v1/chat/completions', {
      model: 'no-such-model',
      messages: [{ role: 'user', content: 'x' }],
    });
    assert.equal(missing.status, 404);
    const key = await call(gw, gw.masterKey, 'POST', '/admin/keys', { name: 'sampled-out' });
    registerSecret(key.body['key'] as string);
    const lines = logLines(gw);
    assert.equal(lines.filter((l) => l['msg'] === 'request' && l['status'] < 400).length, 0);
    assert.ok(
      lines.some(
        (l) => l['msg'] === 'request' && l['requestId'] === missing.requestId && l['status'] === 404,
      ),
    );
    assert.ok(lines.some((l) => l['audit'] === true && l['action'] === 'key.create'));
  });
});
