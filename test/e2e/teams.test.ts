/**
 * Teams: the admin API (create, list, read, change, delete; a team with active
 * keys is not deleted), and keys in a team sharing its limits and budget,
 * counted across all of them, on top of each key's own; a request one of them
 * refuses is not counted by the other; usage grouped by team.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let gw: TestGateway;

before(async () => {
  gw = await startTestGateway({
    config: {
      tiers: { squad: { requests_per_minute: 3 } },
      // "ping" with max_tokens 1 costs $0.005 (see budgets.test.ts).
      pricing: { 'mock-1': { input: 1_000, output: 1_000 } },
    },
  });
});
after(() => gw.close());

async function admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown) {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as T };
}

type Team = { id: string; name: string; tier: string | null; limits: unknown; budget: unknown };
type Key = { id: string; key: string; team_id: string | null };

async function chat(key: string): Promise<Response> {
  const res = await fetch(`${gw.baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock', max_tokens: 1, messages: [{ role: 'user', content: 'ping' }] }),
  });
  await res.clone().arrayBuffer();
  return res;
}

describe('teams', () => {
  test('the admin API: create, list, read, change; refuses bad input and unknown teams', async () => {
    const created = await admin<Team>('POST', '/admin/teams', {
      name: 'search',
      tier: 'pro',
      budget: { monthly_usd: 100 },
    });
    assert.equal(created.status, 201);
    assert.match(created.json.id, /^team_[a-f0-9]{24}$/);
    assert.equal((await admin<Team>('GET', `/admin/teams/${created.json.id}`)).json.name, 'search');
    const listed = await admin<{ data: Team[] }>('GET', '/admin/teams');
    assert.ok(listed.json.data.some((t) => t.id === created.json.id));
    const changed = await admin<Team>('PATCH', `/admin/teams/${created.json.id}`, {
      limits: { requests_per_day: 10 },
      tier: null,
    });
    assert.deepEqual([changed.json.tier, changed.json.limits], [null, { requests_per_day: 10 }]);
    assert.equal((await admin('POST', '/admin/teams', { name: '' })).status, 400);
    assert.equal((await admin('POST', '/admin/teams', { name: 'x', budget: { daily_usd: 0 } })).status, 400);
    assert.equal((await admin('GET', `/admin/teams/team_${'0'.repeat(24)}`)).status, 404);
    assert.equal((await admin('PATCH', '/admin/teams/nope', { name: 'y' })).status, 404);
    assert.equal(
      (await admin('POST', '/admin/keys', { name: 'k', team_id: `team_${'0'.repeat(24)}` })).status,
      400,
    );
  });

  test("keys share their team's limits (from its tier), counted across them, with their own on top", async () => {
    const team = (await admin<Team>('POST', '/admin/teams', { name: 'squad', tier: 'squad' })).json;
    const a = (
      await admin<Key>('POST', '/admin/keys', {
        name: 'a',
        team_id: team.id,
        limits: { requests_per_minute: 10 },
      })
    ).json;
    const b = (await admin<Key>('POST', '/admin/keys', { name: 'b', team_id: team.id })).json;
    assert.equal(a.team_id, team.id);
    const first = await chat(a.key);
    assert.equal(first.status, 200);
    assert.equal(
      first.headers.get('ratelimit-policy'),
      '"requests-minute";q=10;w=60, "team-requests-minute";q=3;w=60',
    );
    // The team's 3 a minute is the tighter: OpenAI's headers report it.
    assert.equal(first.headers.get('x-ratelimit-remaining-requests'), '2');
    assert.equal((await chat(b.key)).status, 200);
    assert.equal((await chat(b.key)).status, 200);
    const refused = await chat(a.key);
    assert.equal(refused.status, 429);
    assert.match(
      ((await refused.json()) as { error: { message: string } }).error.message,
      /team's limit of 3 requests per minute/,
    );
    // Refused by the team, the request was not counted by key a's own window: 10 - 1 (the first) - 1 (the next).
    await admin('PATCH', `/admin/teams/${team.id}`, { tier: null });
    const next = await chat(a.key);
    assert.equal(next.status, 200);
    assert.equal(next.headers.get('x-ratelimit-remaining-requests'), '8');
  });

  test("keys share their team's budget; a team with active keys is not deleted", async () => {
    const team = (
      await admin<Team>('POST', '/admin/teams', { name: 'spenders', budget: { total_usd: 0.01 } })
    ).json;
    const a = (await admin<Key>('POST', '/admin/keys', { name: 'a', team_id: team.id })).json;
    const b = (await admin<Key>('POST', '/admin/keys', { name: 'b', team_id: team.id })).json;
    assert.equal((await chat(a.key)).status, 200);
    assert.equal((await chat(b.key)).status, 200);
    const refused = await chat(a.key);
    assert.equal(refused.status, 402);
    assert.match(
      ((await refused.json()) as { error: { message: string } }).error.message,
      /team's total budget of \$0\.01/,
    );

    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    for (const key of [a, b]) {
      assert.match(
        metrics,
        new RegExp(`switchyard_spend_usd_total\\{key="${key.id}",team="${team.id}"\\} 0\\.005\\b`),
      );
    }

    await gw.gateway.context.ledger.flush();
    const usage = await admin<{ data: Array<Record<string, unknown>> }>('GET', '/admin/usage?group_by=team');
    const row = usage.json.data.find((r) => r['team_id'] === team.id);
    assert.deepEqual([row?.['requests'], row?.['cost_usd']], [2, '0.010000']);

    const blocked = await admin<{ error: { message: string } }>('DELETE', `/admin/teams/${team.id}`);
    assert.equal(blocked.status, 400);
    assert.match(blocked.json.error.message, /2 active keys/);
    assert.equal((await admin('PATCH', `/admin/keys/${a.id}`, { team_id: null })).status, 200);
    assert.equal((await admin('DELETE', `/admin/keys/${b.id}`)).status, 200);
    assert.equal((await chat(a.key)).status, 200, 'out of the team, key a has no budget of its own');
    assert.deepEqual((await admin('DELETE', `/admin/teams/${team.id}`)).json, { id: team.id, deleted: true });
    assert.equal((await admin('GET', `/admin/teams/${team.id}`)).status, 404);
  });
});
