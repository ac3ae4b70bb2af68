/**
 * The OpenAI-compatible API end to end: the official `openai` SDK against the
 * gateway, the gateway against the mock OpenAI upstream. Proves what clients
 * see (content, usage, models, every error as the SDK's matching class) and
 * what the upstream sees (the body passed through, the upstream model id, the
 * gateway's own provider key and never the client's).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, type RecordedRequest, startMockUpstream } from '../helpers/mock-upstream.ts';

const canary = `sk-CANARY-${randomBytes(12).toString('hex')}`;
const backupCanary = `sk-CANARY-${randomBytes(12).toString('hex')}`;
registerSecret(canary);
registerSecret(backupCanary);

let upstream: MockUpstream;
let backup: MockUpstream;
let elsewhere: MockUpstream;
let gw: TestGateway;
let client: OpenAI;

const user = (content: string) => [{ role: 'user' as const, content }];

interface CreatedKey {
  id: string;
  key: string;
  name: string;
  hint: string;
  allowed_models: string[] | null;
}

async function createKey(body: Record<string, unknown>): Promise<CreatedKey> {
  const res = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const created = (await res.json()) as CreatedKey;
  if (typeof created.key === 'string') registerSecret(created.key);
  assert.equal(res.status, 201, JSON.stringify(created));
  return created;
}

function sdk(apiKey: string): OpenAI {
  return new OpenAI({ baseURL: gw.baseUrl, apiKey, maxRetries: 0 });
}

/** The `model` the upstream was asked for. */
function modelOf(request: RecordedRequest | undefined): unknown {
  return (request?.body as { model?: unknown } | undefined)?.model;
}

/** Every header value the upstream received, flattened. */
function headerValues(request: RecordedRequest): string[] {
  return Object.values(request.headers).flatMap((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]));
}

/** Runs `fn`, expecting it to reject with an instance of `cls`; returns the error. */
async function rejectsWith<T extends InstanceType<typeof OpenAI.APIError>>(
  fn: () => Promise<unknown>,
  cls: abstract new (...args: never[]) => T,
  status: number,
): Promise<T> {
  try {
    await fn();
  } catch (error) {
    assert.ok(
      error instanceof cls,
      `expected ${cls.name}, got ${(error as Error)?.constructor?.name}: ${String(error)}`,
    );
    assert.equal(error.status, status);
    return error;
  }
  assert.fail(`expected ${cls.name} (${status}), but the call succeeded`);
}

before(async () => {
  upstream = await startMockUpstream({ requireApiKey: canary });
  backup = await startMockUpstream({ requireApiKey: backupCanary });
  elsewhere = await startMockUpstream();
  gw = await startTestGateway({
    config: {
      server: { body_limit_bytes: 2048 },
      providers: {
        up: { type: 'openai', base_url: upstream.baseUrl, api_key: canary },
        backup: { type: 'openai', base_url: backup.baseUrl, api_key: backupCanary },
      },
      models: {
        // These tests inject one fault after another into one target: they test error mapping, not
        // breakers, and each fault must reach the client (or the next target) rather than a retry.
        gpt: {
          targets: [{ provider: 'up', model: 'gpt-4o-mini' }],
          timeouts: { first_byte_ms: 500, total_ms: 10_000, idle_ms: 2_000 },
          retries: { max: 0 },
          circuit_breaker: { enabled: false },
        },
        other: {
          targets: [{ provider: 'up', model: 'gpt-4o' }],
          retries: { max: 0 },
          circuit_breaker: { enabled: false },
        },
        '50%off': { targets: [{ provider: 'up', model: 'gpt-4o' }] },
        embed: {
          targets: [{ provider: 'up', model: 'text-embedding-3-small' }],
          retries: { max: 0 },
          circuit_breaker: { enabled: false },
        },
        fb: {
          strategy: 'fallback',
          retries: { max: 0 },
          circuit_breaker: { enabled: false },
          targets: [
            { provider: 'up', model: 'gpt-4o-mini' },
            { provider: 'backup', model: 'gpt-4o' },
          ],
        },
      },
    },
  });
  client = sdk(gw.masterKey);
});

after(async () => {
  await gw?.close();
  await Promise.all([upstream?.close(), backup?.close(), elsewhere?.close()]);
});

beforeEach(() => {
  upstream.reset();
  backup.reset();
  elsewhere.reset();
});

describe('chat completions and pass-through', () => {
  test('content and usage are relayed; the client sees its alias, the upstream the target id', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hello there world' },
      ],
    });
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.model, 'gpt');
    assert.equal(completion.choices[0]?.message.content, 'Echo: hello there world');
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
    // Mock usage: prompt = per message (words + 3) = (2+3) + (3+3); completion = one token per word.
    assert.deepEqual(
      {
        prompt: completion.usage?.prompt_tokens,
        completion: completion.usage?.completion_tokens,
        total: completion.usage?.total_tokens,
      },
      { prompt: 11, completion: 4, total: 15 },
    );
    const [seen] = await upstream.waitForRequests(1);
    assert.equal(seen?.path, '/v1/chat/completions');
    assert.equal(modelOf(seen), 'gpt-4o-mini');
  });

  test('unknown request fields reach the upstream unchanged', async () => {
    const extra = {
      some_new_param: { x: 1, nested: [true, null, 'ß'] },
      reasoning_effort: 'low',
      metadata: { team: 'a' },
    };
    await client.chat.completions.create({
      model: 'gpt',
      messages: user('pass me through'),
      ...(extra as Record<string, unknown>),
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const [seen] = await upstream.waitForRequests(1);
    const body = seen?.body as Record<string, unknown>;
    assert.deepEqual(body['some_new_param'], extra.some_new_param);
    assert.equal(body['reasoning_effort'], 'low');
    assert.deepEqual(body['metadata'], { team: 'a' });
    assert.deepEqual(body['messages'], user('pass me through'));
    assert.equal(body['model'], 'gpt-4o-mini');
  });

  test("the upstream gets the gateway's provider key, never the client's key", async () => {
    const vk = await createKey({ name: 'pass-through-check' });
    await sdk(vk.key).chat.completions.create({ model: 'gpt', messages: user('whose key') });
    await client.chat.completions.create({ model: 'gpt', messages: user('master now') });
    const seen = await upstream.waitForRequests(2);
    for (const request of seen) {
      // requireApiKey would have answered 401 otherwise; check the header anyway.
      assert.equal(request.headers.authorization, `Bearer ${canary}`);
      assert.notEqual(request.behaviour, 'auth');
      for (const value of headerValues(request)) {
        assert.ok(!value.includes(vk.key), 'virtual key reached the upstream');
        assert.ok(!value.includes(gw.masterKey), 'master key reached the upstream');
      }
    }
  });
});

describe('embeddings and models', () => {
  test('embeddings are relayed with usage, under the alias', async () => {
    const res = await client.embeddings.create({ model: 'embed', input: ['one two', 'three'] });
    assert.equal(res.object, 'list');
    assert.equal(res.model, 'embed');
    assert.equal(res.data.length, 2);
    assert.equal(res.data[0]?.embedding.length, 8);
    assert.equal(res.data[1]?.index, 1);
    assert.equal(res.usage.prompt_tokens, 3);
    const [seen] = await upstream.waitForRequests(1);
    assert.equal(seen?.path, '/v1/embeddings');
    assert.equal(modelOf(seen), 'text-embedding-3-small');
  });

  test('models.list shows every model to the master key, only allowed ones to a restricted key', async () => {
    const all: string[] = [];
    for await (const m of client.models.list()) all.push(m.id);
    assert.deepEqual(all.sort(), ['50%off', 'embed', 'fb', 'gpt', 'other']);

    const restricted = await createKey({ name: 'only-other', models: ['other', 'embed'] });
    const visible: string[] = [];
    for await (const m of sdk(restricted.key).models.list()) visible.push(m.id);
    assert.deepEqual(visible.sort(), ['embed', 'other']);
    assert.equal(upstream.requests.length, 0, 'listing models must not call the upstream');
  });

  test('models.retrieve returns a known model; an unknown one is NotFoundError', async () => {
    const model = await client.models.retrieve('gpt');
    assert.equal(model.id, 'gpt');
    assert.equal(model.object, 'model');
    const error = await rejectsWith(() => client.models.retrieve('no-such-model'), OpenAI.NotFoundError, 404);
    assert.match(error.message, /no-such-model/);
  });

  test('models.retrieve works for an alias containing "%" (the id is decoded once, not twice)', async () => {
    // The SDK sends /v1/models/50%25off; decoding that twice throws (URIError → 500).
    const model = await client.models.retrieve('50%off');
    assert.equal(model.id, '50%off');
    const res = await fetch(`${gw.baseUrl}/models/100%25`, {
      headers: { authorization: `Bearer ${gw.masterKey}` },
    });
    assert.equal(res.status, 404, await res.text());
  });
});

describe('errors as the SDK classes, in OpenAI shape', () => {
  test('400: missing messages names the field', async () => {
    const error = await rejectsWith(
      () => client.chat.completions.create({ model: 'gpt' } as OpenAI.ChatCompletionCreateParamsNonStreaming),
      OpenAI.BadRequestError,
      400,
    );
    assert.match(error.message, /messages/);
    assert.equal(error.param, 'messages');
    assert.equal(error.type, 'invalid_request_error');
    assert.equal(upstream.requests.length, 0);
  });

  test('400: out-of-range temperature names the field', async () => {
    const error = await rejectsWith(
      () => client.chat.completions.create({ model: 'gpt', messages: user('hot'), temperature: 7 }),
      OpenAI.BadRequestError,
      400,
    );
    assert.match(error.message, /temperature/);
    assert.equal(error.param, 'temperature');
    assert.equal(upstream.requests.length, 0);
  });

  test('401: no key and a wrong key are AuthenticationError', async () => {
    const noKey = await rejectsWith(
      () =>
        client.chat.completions.create(
          { model: 'gpt', messages: user('hi') },
          { headers: { authorization: null } },
        ),
      OpenAI.AuthenticationError,
      401,
    );
    assert.equal(noKey.type, 'authentication_error');
    assert.match(noKey.message, /Missing API key/);
    const wrong = `sk-sy-wrong-${randomBytes(16).toString('hex')}`;
    registerSecret(wrong);
    await rejectsWith(
      () => sdk(wrong).chat.completions.create({ model: 'gpt', messages: user('hi') }),
      OpenAI.AuthenticationError,
      401,
    );
    await rejectsWith(() => sdk(wrong).models.list(), OpenAI.AuthenticationError, 401);
    assert.equal(upstream.requests.length, 0);
  });

  test('403: a virtual key limited to another model is PermissionDeniedError', async () => {
    const vk = await createKey({ name: 'other-only', models: ['other'] });
    const error = await rejectsWith(
      () => sdk(vk.key).chat.completions.create({ model: 'gpt', messages: user('not mine') }),
      OpenAI.PermissionDeniedError,
      403,
    );
    assert.match(error.message, /gpt/);
    await rejectsWith(() => sdk(vk.key).models.retrieve('gpt'), OpenAI.PermissionDeniedError, 403);
    // The model it may use works.
    const ok = await sdk(vk.key).chat.completions.create({ model: 'other', messages: user('mine') });
    assert.equal(ok.choices[0]?.message.content, 'Echo: mine');
    const seen = await upstream.waitForRequests(1);
    assert.equal(seen.length, 1);
    assert.equal(modelOf(seen[0]), 'gpt-4o');
  });

  test('404: an unknown model is NotFoundError, and the raw body has the OpenAI error shape', async () => {
    const error = await rejectsWith(
      () => client.chat.completions.create({ model: 'gpt-9-ultra', messages: user('hi') }),
      OpenAI.NotFoundError,
      404,
    );
    assert.equal(error.code, 'model_not_found');
    assert.equal(error.param, 'model');

    const res = await fetch(`${gw.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-9-ultra', messages: user('hi') }),
    });
    assert.equal(res.status, 404);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const body = (await res.json()) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body), ['error']);
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(typeof body.error['message'], 'string');
    assert.equal(body.error['type'], 'not_found_error');
    assert.equal(body.error['code'], 'model_not_found');
    assert.equal(body.error['param'], 'model');
    assert.equal(upstream.requests.length, 0);
  });

  test('400 and 401 raw bodies have the OpenAI error shape too (param null when no field)', async () => {
    const bad = await fetch(`${gw.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt', messages: [] }),
    });
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), {
      error: {
        message: 'messages: expected a non-empty array',
        type: 'invalid_request_error',
        code: 'invalid_request',
        param: 'messages',
      },
    });
    const unauth = await fetch(`${gw.baseUrl}/models`);
    assert.equal(unauth.status, 401);
    const body = (await unauth.json()) as { error: Record<string, unknown> };
    assert.equal(body.error['type'], 'authentication_error');
    assert.equal(body.error['param'], null);
    assert.equal(typeof body.error['message'], 'string');
    assert.equal(typeof body.error['code'], 'string');
  });

  test('400: a malformed percent-escape in a /v1 path is answered in the OpenAI error shape', async () => {
    const res = await fetch(`${gw.baseUrl}/models/%E0%A4%A`, {
      headers: { authorization: `Bearer ${gw.masterKey}` },
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error?: Record<string, unknown> };
    assert.equal(typeof body.error, 'object', `not OpenAI-shaped: ${JSON.stringify(body)}`);
    assert.deepEqual(Object.keys(body.error ?? {}).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(body.error?.['type'], 'invalid_request_error');
  });

  test('upstream 4xx keep their status and message, and are not retried on another target', async () => {
    upstream.enqueue({
      kind: 'status',
      status: 400,
      error: { message: "Invalid value for 'logit_bias'.", param: 'logit_bias', code: 'invalid_value' },
    });
    const bad = await rejectsWith(
      () => client.chat.completions.create({ model: 'fb', messages: user('bad bias') }),
      OpenAI.BadRequestError,
      400,
    );
    assert.match(bad.message, /logit_bias/);
    assert.equal(bad.param, 'logit_bias');
    assert.equal(backup.requests.length, 0, 'a client error must not fall back');

    upstream.enqueue({ kind: 'status', status: 422 });
    await rejectsWith(
      () => client.chat.completions.create({ model: 'gpt', messages: user('unprocessable') }),
      OpenAI.UnprocessableEntityError,
      422,
    );
  });

  test('413: a body over server.body_limit_bytes', async () => {
    const error = await rejectsWith(
      () => client.chat.completions.create({ model: 'gpt', messages: user('x'.repeat(4096)) }),
      OpenAI.APIError,
      413,
    );
    assert.equal(error.code, 'request_too_large');
    assert.equal(upstream.requests.length, 0);
  });

  test('429: an upstream rate limit is RateLimitError and carries retry-after', async () => {
    upstream.enqueue({ kind: 'rateLimit', retryAfterSeconds: 7 });
    const error = await rejectsWith(
      () => client.chat.completions.create({ model: 'gpt', messages: user('too fast') }),
      OpenAI.RateLimitError,
      429,
    );
    assert.equal(error.headers?.get('retry-after'), '7');
    assert.equal(error.type, 'rate_limit_error');
    const seen = await upstream.waitForRequests(1);
    assert.equal(seen.length, 1, 'one attempt only');
    assert.equal(seen[0]?.status, 429);
  });

  test('502: an upstream 500 with no other target', async () => {
    upstream.enqueue({ kind: 'status', status: 500 });
    const error = await rejectsWith(
      () => client.chat.completions.create({ model: 'gpt', messages: user('boom') }),
      OpenAI.InternalServerError,
      502,
    );
    assert.equal(error.type, 'upstream_error');
  });

  test('502: upstream sends malformed JSON', async () => {
    upstream.enqueue({ kind: 'malformedJson' });
    const error = await rejectsWith(
      () => client.chat.completions.create({ model: 'gpt', messages: user('half a body') }),
      OpenAI.InternalServerError,
      502,
    );
    assert.equal(error.code, 'upstream_bad_response');
  });

  test('502: an upstream redirect is not followed (the redirect target sees nothing)', async () => {
    upstream.enqueue({ kind: 'redirect', location: `${elsewhere.baseUrl}/chat/completions`, status: 307 });
    const error = await rejectsWith(
      () => client.chat.completions.create({ model: 'gpt', messages: user('go elsewhere') }),
      OpenAI.InternalServerError,
      502,
    );
    assert.match(error.message, /redirect/i);
    const seen = await upstream.waitForRequests(1);
    assert.equal(seen[0]?.status, 307);
    // Also ask the other host something directly, so "0 recorded" is not an artefact of a dead mock.
    assert.equal(elsewhere.requests.length, 0);
    const probe = await fetch(`${elsewhere.baseUrl}/models`);
    assert.equal(probe.status, 200);
    assert.equal(elsewhere.requests.length, 1);
    assert.equal(elsewhere.requests[0]?.path, '/v1/models');
  });

  test('504: an upstream that hangs past first_byte_ms', async () => {
    upstream.enqueue({ kind: 'hang' });
    const error = await rejectsWith(
      () => client.chat.completions.create({ model: 'gpt', messages: user('hello?') }),
      OpenAI.InternalServerError,
      504,
    );
    assert.equal(error.code, 'upstream_timeout');
    // The gateway gave up on the upstream connection.
    await upstream.waitForAbort();
  });
});

describe('virtual keys end to end', () => {
  test('create (secret shown once) → use → list without secrets → revoke → 401 next request', async () => {
    const created = await createKey({ name: 'lifecycle', metadata: { team: 'search' } });
    assert.match(created.id, /^key_[a-f0-9]{24}$/);
    assert.equal(created.name, 'lifecycle');
    assert.equal(typeof created.key, 'string');
    assert.ok(created.key.length >= 32);
    assert.equal(created.hint, `…${created.key.slice(-4)}`);

    const vclient = sdk(created.key);
    const completion = await vclient.chat.completions.create({ model: 'gpt', messages: user('as a tenant') });
    assert.equal(completion.choices[0]?.message.content, 'Echo: as a tenant');

    const listRes = await fetch(`${gw.url}/admin/keys`, {
      headers: { authorization: `Bearer ${gw.masterKey}` },
    });
    assert.equal(listRes.status, 200);
    const listText = await listRes.text();
    const hash = createHash('sha256').update(created.key).digest('hex');
    assert.ok(!listText.includes(created.key), 'the secret is listed');
    assert.ok(!listText.includes(hash), 'the hash is listed');
    assert.ok(!listText.includes(created.key.slice(0, 12)), 'a prefix of the secret is listed');
    const listed = (JSON.parse(listText) as { data: Array<Record<string, unknown>> }).data.find(
      (k) => k['id'] === created.id,
    );
    assert.ok(listed, 'the key is listed');
    assert.equal(listed['key'], undefined);
    assert.equal(listed['key_hash'], undefined);
    assert.deepEqual(listed['metadata'], { team: 'search' });
    assert.equal(listed['revoked_at'], null);

    const del = await fetch(`${gw.url}/admin/keys/${created.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${gw.masterKey}` },
    });
    assert.equal(del.status, 200);
    assert.deepEqual(await del.json(), { id: created.id, revoked: true });

    await rejectsWith(
      () => vclient.chat.completions.create({ model: 'gpt', messages: user('still there?') }),
      OpenAI.AuthenticationError,
      401,
    );
    await rejectsWith(() => vclient.models.list(), OpenAI.AuthenticationError, 401);
    assert.equal(upstream.requests.length, 1, 'only the request before revocation reached the upstream');

    const again = await fetch(`${gw.url}/admin/keys/${created.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${gw.masterKey}` },
    });
    assert.equal(again.status, 404);
  });

  test('a key whose expires_at has passed is refused with 401', async () => {
    // The admin API refuses to create a key already expired (hostile-input.test.ts), so
    // keys that have since expired are made through the store, as time would make them.
    const expired = async (name: string, expiresAt: number) => {
      const { secret } = await gw.gateway.context.keys.create({ name, expiresAt });
      registerSecret(secret);
      return { key: secret };
    };
    const pastIso = await expired('expired-iso', Date.parse('2000-01-01T00:00:00Z'));
    const pastMs = await expired('expired-ms', Date.now() - 1_000);
    const future = await createKey({ name: 'not-yet', expires_at: Date.now() + 3_600_000 });
    for (const k of [pastIso, pastMs]) {
      await rejectsWith(
        () => sdk(k.key).chat.completions.create({ model: 'gpt', messages: user('expired') }),
        OpenAI.AuthenticationError,
        401,
      );
    }
    const ok = await sdk(future.key).chat.completions.create({ model: 'gpt', messages: user('valid') });
    assert.equal(ok.choices[0]?.message.content, 'Echo: valid');
    assert.equal(upstream.requests.length, 1);
  });
});

describe('fallback', () => {
  test('the first target answers 503 → the answer comes from the second', async () => {
    upstream.enqueue({ kind: 'status', status: 503 });
    const { data, response } = await client.chat.completions
      .create({ model: 'fb', messages: user('fall back please') })
      .withResponse();
    assert.equal(data.choices[0]?.message.content, 'Echo: fall back please');
    assert.equal(data.model, 'fb');
    assert.equal(response.headers.get('x-switchyard-provider'), 'backup');
    const first = await upstream.waitForRequests(1);
    assert.equal(first[0]?.status, 503);
    assert.equal(modelOf(first[0]), 'gpt-4o-mini');
    const second = await backup.waitForRequests(1);
    assert.equal(second[0]?.status, 200);
    assert.equal(modelOf(second[0]), 'gpt-4o');
    assert.equal(second[0]?.headers.authorization, `Bearer ${backupCanary}`);
  });

  test('a healthy first target is used and the second is not called', async () => {
    const { response } = await client.chat.completions
      .create({ model: 'fb', messages: user('first one') })
      .withResponse();
    assert.equal(response.headers.get('x-switchyard-provider'), 'up');
    assert.equal(backup.requests.length, 0);
  });
});
