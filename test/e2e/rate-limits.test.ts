/**
 * Rate limits of keys and tiers on one gateway (in-process windows): the
 * headers on every response of a limited key, 429 `rate_limit_exceeded` with
 * Retry-After in each API's error shape before any upstream call, tiers from
 * config, limits changed live with PATCH /admin/keys/:id, token limits charged
 * as estimated and corrected to the real usage, streams included.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

let gw: TestGateway;
let upstream: MockUpstream;

before(async () => {
  upstream = await startMockUpstream();
  gw = await startTestGateway({
    config: {
      providers: {
        mock: { type: 'mock' },
        up: { type: 'openai', base_url: upstream.baseUrl, api_key: 'sk-up' },
      },
      models: {
        mock: { targets: [{ provider: 'mock', model: 'mock-1' }] },
        slow: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }], retries: { max: 0 } },
      },
      // `free` redefined, `pro` and `enterprise` kept as the defaults.
      tiers: { free: { requests_per_minute: 2 }, team: { requests_per_minute: 5, requests_per_day: 4 } },
    },
  });
});
after(async () => {
  await gw.close();
  await upstream.close();
});

/** What the admin key endpoints answer (a key view, or an error). */
interface AdminJson {
  id: string;
  key?: string;
  tier: string | null;
  allowed_models: string[] | null;
  limits: unknown;
  error: { type: string };
}

async function admin(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: AdminJson }> {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as AdminJson };
}

async function newKey(fields: Record<string, unknown>): Promise<{ id: string; key: string }> {
  const { status, json } = await admin('POST', '/admin/keys', { name: 'limited', ...fields });
  assert.equal(status, 201, JSON.stringify(json));
  return { id: json.id, key: json.key! };
}

async function chat(key: string, extra: Record<string, unknown> = {}): Promise<Response> {
  return fetch(`${gw.baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'ping' }], ...extra }),
  });
}

const limitHeaders = (res: Response) =>
  Object.fromEntries(
    [...res.headers].filter(([name]) => name.startsWith('x-ratelimit-') || name.startsWith('ratelimit')),
  );

describe('a key with its own request limit', () => {
  test('every answer says the limit and what is left; over it: 429 before any upstream call', async () => {
    const { key } = await newKey({ limits: { requests_per_minute: 3 } });
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await chat(key);
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      assert.equal(res.headers.get('x-ratelimit-limit-requests'), '3');
      remaining.push(res.headers.get('x-ratelimit-remaining-requests')!);
      assert.match(res.headers.get('x-ratelimit-reset-requests')!, /^(\d+ms|\d+s|1m\d+s)$/);
      assert.equal(res.headers.get('ratelimit-policy'), '"requests-minute";q=3;w=60');
      assert.match(res.headers.get('ratelimit')!, /^"requests-minute";r=\d;t=\d+$/);
    }
    assert.deepEqual(remaining, ['2', '1', '0']);

    const refused = await chat(key);
    assert.equal(refused.status, 429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 64, String(retryAfter));
    assert.equal(refused.headers.get('x-ratelimit-remaining-requests'), '0');
    const body = (await refused.json()) as { error: { type: string; code: string; message: string } };
    assert.equal(body.error.code, 'rate_limit_exceeded');
    assert.equal(body.error.type, 'rate_limit_error');
    assert.match(body.error.message, /limit of 3 requests per minute/);
  });

  test('the OpenAI SDK sees a RateLimitError; the Anthropic route answers in its own shape', async () => {
    const { key } = await newKey({ limits: { requests_per_minute: 1 } });
    const openai = new OpenAI({ apiKey: key, baseURL: gw.baseUrl, maxRetries: 0 });
    await openai.chat.completions.create({ model: 'mock', messages: [{ role: 'user', content: 'hi' }] });
    await assert.rejects(
      openai.chat.completions.create({ model: 'mock', messages: [{ role: 'user', content: 'hi' }] }),
      (error: unknown) => error instanceof OpenAI.RateLimitError && error.status === 429,
    );
    const anthropic = new Anthropic({ apiKey: key, baseURL: gw.url, maxRetries: 0 });
    await assert.rejects(
      anthropic.messages.create({
        model: 'mock',
        max_tokens: 16,
        messages: [{ role: 'user', content: 'hi' }],
      }),
      (error: unknown) =>
        error instanceof Anthropic.RateLimitError &&
        (error.error as { error: { type: string } }).error.type === 'rate_limit_error',
    );
  });

  test('a stream carries the headers too', async () => {
    const { key } = await newKey({ limits: { requests_per_minute: 5 } });
    const res = await chat(key, { stream: true });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /text\/event-stream/);
    assert.equal(res.headers.get('x-ratelimit-remaining-requests'), '4');
    assert.match(await res.text(), /data: \[DONE\]/);
  });

  test('the master key and a key without limits carry no limit headers', async () => {
    const { key } = await newKey({});
    for (const token of [gw.masterKey, key]) {
      const res = await chat(token);
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      assert.deepEqual(limitHeaders(res), {});
    }
  });
});

describe('tiers', () => {
  test("a key gets its tier's limits from config; the defaults stay for tiers config leaves alone", async () => {
    const free = await newKey({ tier: 'free' });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await chat(free.key)).status);
    assert.deepEqual(statuses, [200, 200, 429]);

    const pro = await newKey({ tier: 'pro' });
    const res = await chat(pro.key);
    assert.equal(res.headers.get('ratelimit-policy'), '"requests-hour";q=1000;w=3600');
  });

  test("a key's own limits override its tier's, one limit at a time", async () => {
    const { key } = await newKey({ tier: 'team', limits: { requests_per_minute: 50 } });
    const res = await chat(key);
    assert.equal(
      res.headers.get('ratelimit-policy'),
      '"requests-minute";q=50;w=60, "requests-day";q=4;w=86400',
    );
    // The tighter of the two is the one OpenAI's headers report.
    assert.equal(res.headers.get('x-ratelimit-limit-requests'), '4');
    assert.equal(res.headers.get('x-ratelimit-remaining-requests'), '3');
  });
});

describe('PATCH /admin/keys/:id', () => {
  test('changes the limits at once; the key keeps its secret and its count', async () => {
    const { id, key } = await newKey({ limits: { requests_per_minute: 1 } });
    assert.equal((await chat(key)).status, 200);
    assert.equal((await chat(key)).status, 429);
    const patched = await admin('PATCH', `/admin/keys/${id}`, { limits: { requests_per_minute: 3 } });
    assert.equal(patched.status, 200);
    assert.deepEqual(patched.json.limits, { requests_per_minute: 3 });
    assert.equal(patched.json.key, undefined, 'the secret is never shown again');
    assert.equal((await chat(key)).status, 200);
    assert.equal((await chat(key)).status, 200);
    assert.equal((await chat(key)).status, 429);
    // null: back to the tier's limits alone (here none).
    assert.equal((await admin('PATCH', `/admin/keys/${id}`, { limits: null })).status, 200);
    const free = await chat(key);
    assert.equal(free.status, 200);
    assert.deepEqual(limitHeaders(free), {});
  });

  test('changes tier and models; refuses bad input with 400 and unknown keys with 404', async () => {
    const { id, key } = await newKey({});
    const patched = await admin('PATCH', `/admin/keys/${id}`, { tier: 'free', models: ['other'] });
    assert.equal(patched.status, 200);
    assert.equal(patched.json.tier, 'free');
    assert.deepEqual(patched.json.allowed_models, ['other']);
    assert.equal((await chat(key)).status, 403, 'the model is no longer allowed');

    for (const bad of [
      { limits: { requests_per_minute: 0 } },
      { limits: { requests_per_week: 5 } },
      { tier: 'no spaces' },
      { key_hash: 'x' },
    ]) {
      const res = await admin('PATCH', `/admin/keys/${id}`, bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal(res.json.error.type, 'invalid_request_error');
    }
    assert.equal((await admin('PATCH', `/admin/keys/key_${'0'.repeat(24)}`, { tier: 'pro' })).status, 404);
    assert.equal((await admin('PATCH', '/admin/keys/not-a-key', { tier: 'pro' })).status, 404);
  });
});

describe('a token limit', () => {
  test('a request whose estimate alone is over it is refused, with no Retry-After (it would never fit)', async () => {
    const { key } = await newKey({ limits: { tokens_per_minute: 100 } });
    const res = await chat(key, { max_tokens: 500 });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), null);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /never be admitted/);
  });

  test('is charged the estimate, then corrected to the real usage (streams too)', async () => {
    const { key } = await newKey({ limits: { tokens_per_minute: 1_000 } });
    // Estimate: prompt (~4 tokens) + max_tokens 200.
    const first = await chat(key, { max_tokens: 200 });
    const answer = (await first.json()) as { usage: { total_tokens: number } };
    const charged = 1_000 - Number(first.headers.get('x-ratelimit-remaining-tokens'));
    assert.ok(charged > 200 && charged < 220, String(charged));
    // The next decision sees the first one's real tokens, not its estimate.
    const second = await chat(key, { max_tokens: 1, stream: true });
    await second.text();
    const seenBySecond = 1_000 - Number(second.headers.get('x-ratelimit-remaining-tokens'));
    const secondEstimate = charged - 200 + 1;
    assert.equal(seenBySecond, answer.usage.total_tokens + secondEstimate);
    const third = await chat(key, { max_tokens: 1 });
    await third.arrayBuffer();
    const seenByThird = 1_000 - Number(third.headers.get('x-ratelimit-remaining-tokens'));
    // The stream's real usage replaced its estimate too.
    assert.ok(seenByThird > seenBySecond, `${seenByThird} > ${seenBySecond}`);
  });
});

describe('max_concurrent', () => {
  test('holds a slot per request in flight: one over the cap is refused, a finished one frees its slot', async () => {
    const { key } = await newKey({ limits: { max_concurrent: 2, requests_per_minute: 100 } });
    upstream.reset();
    // Two streams the upstream never answers past its headers: both stay in flight.
    upstream.enqueue({ kind: 'hangAfterHeaders' }, { kind: 'hangAfterHeaders' });
    const clients = [new AbortController(), new AbortController()];
    const held = clients.map((client) =>
      fetch(`${gw.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'slow', stream: true, messages: [{ role: 'user', content: 'wait' }] }),
        signal: client.signal,
      }).catch(() => undefined),
    );
    const inFlight = await upstream.waitForRequests(2);
    const refused = await chat(key, { model: 'slow' });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '1');
    const body = (await refused.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'rate_limit_exceeded');
    assert.match(body.error.message, /2 requests in flight/);
    assert.equal(upstream.requests.length, 2, 'the refused request reached no upstream');

    // The clients leave: the gateway lets go of the upstream calls and of their slots.
    for (const client of clients) client.abort();
    await Promise.all(held);
    for (const request of inFlight) await upstream.waitForAbort({ requestId: request.id });
    const next = await chat(key);
    assert.equal(next.status, 200);
    await next.arrayBuffer();
    // Refused for a slot, the third request was not counted by the window: 3 of 100 used, this one included.
    assert.equal(next.headers.get('x-ratelimit-remaining-requests'), '97');
  });
});

describe('per_user limits', () => {
  test("each end user of a key gets the key's per_user limits on their own, inside the key's", async () => {
    const { key } = await newKey({
      limits: { requests_per_minute: 5, per_user: { requests_per_minute: 2 } },
    });
    const as = async (user: string | undefined) => {
      const res = await chat(key, user === undefined ? {} : { user });
      await res.arrayBuffer();
      return res.status;
    };
    assert.deepEqual([await as('alice'), await as('alice'), await as('alice')], [200, 200, 429]);
    const bob = await chat(key, { user: 'bob' });
    await bob.arrayBuffer();
    assert.equal(bob.status, 200);
    assert.equal(
      bob.headers.get('ratelimit-policy'),
      '"requests-minute";q=5;w=60, "user-requests-minute";q=2;w=60',
    );
    // The key's own 5 a minute still caps them together: alice 2, bob 1 (alice's refused third not counted), then 2 more.
    assert.deepEqual([await as(undefined), await as('carol'), await as('dave')], [200, 200, 429]);
  });

  test('the end user can come from a configured header (over the body) and from Anthropic metadata.user_id', async () => {
    const headerGw = await startTestGateway({ config: { server: { end_user_header: 'x-end-user' } } });
    try {
      const created = await fetch(`${headerGw.url}/admin/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${headerGw.masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'u', limits: { per_user: { requests_per_minute: 1 } } }),
      });
      const { key } = (await created.json()) as { key: string };
      const send = async (headers: Record<string, string>, user?: string) => {
        const res = await fetch(`${headerGw.baseUrl}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
          body: JSON.stringify({
            model: 'mock',
            messages: [{ role: 'user', content: 'hi' }],
            ...(user ? { user } : {}),
          }),
        });
        await res.arrayBuffer();
        return res.status;
      };
      assert.equal(await send({ 'x-end-user': 'erin' }, 'frank'), 200);
      assert.equal(await send({}, 'erin'), 429, 'erin named by the header, then by the body: one end user');
      assert.equal(await send({}, 'frank'), 200, 'frank was never counted: the header won');
      const anthropic = new Anthropic({ apiKey: key, baseURL: headerGw.url, maxRetries: 0 });
      const ask = () =>
        anthropic.messages.create({
          model: 'mock',
          max_tokens: 8,
          metadata: { user_id: 'gina' },
          messages: [{ role: 'user', content: 'hi' }],
        });
      await ask();
      await assert.rejects(ask(), (error: unknown) => error instanceof Anthropic.RateLimitError);
    } finally {
      await headerGw.close();
    }
  });
});

describe('traffic limits (config limits.gateway and limits.models)', () => {
  test('all keys share them, the master key too; a model has its own; refusals say whose limit it was', async () => {
    const traffic = await startTestGateway({
      config: {
        models: {
          mock: { targets: [{ provider: 'mock', model: 'mock-1' }] },
          other: { targets: [{ provider: 'mock', model: 'mock-1' }] },
        },
        limits: { gateway: { requests_per_minute: 4 }, models: { other: { requests_per_minute: 1 } } },
      },
    });
    try {
      const send = async (token: string, model: string) => {
        const res = await fetch(`${traffic.baseUrl}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
        });
        return { status: res.status, body: await res.text(), policy: res.headers.get('ratelimit-policy') };
      };
      const created = await fetch(`${traffic.url}/admin/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${traffic.masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 't' }),
      });
      const { key } = (await created.json()) as { key: string };
      const first = await send(key, 'other');
      assert.equal(first.status, 200);
      assert.equal(first.policy, '"gateway-requests-minute";q=4;w=60, "model-requests-minute";q=1;w=60');
      const second = await send(traffic.masterKey, 'other');
      assert.equal(second.status, 429);
      assert.match(second.body, /the model's limit of 1 requests per minute/);
      assert.equal((await send(traffic.masterKey, 'mock')).status, 200);
      assert.equal((await send(key, 'mock')).status, 200);
      // The fourth admitted: the refused one gave its gateway count back.
      assert.equal((await send(key, 'mock')).status, 200);
      // Now the gateway's 4 a minute is spent, whatever the key or model.
      const over = await send(key, 'mock');
      assert.equal(over.status, 429);
      assert.match(over.body, /the gateway's limit of 4 requests per minute/);
    } finally {
      await traffic.close();
    }
  });

  test('a limit on a model the gateway does not serve is refused at start', async () => {
    await assert.rejects(
      startTestGateway({ config: { limits: { models: { nope: { requests_per_minute: 1 } } } } }),
      /limits\.models\.nope: not a model of this gateway/,
    );
  });
});
