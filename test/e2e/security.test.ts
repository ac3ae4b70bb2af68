/**
 * Security end to end (RELIABILITY.md §3.4–3.5): no client-chosen upstream
 * (SSRF), hostile bearer tokens, admin routes behind the master key whatever
 * the path or headers say, request-id hygiene, redirects never followed,
 * client credentials never forwarded, prototype pollution refused, and no
 * secret in the gateway's log.
 *
 * Raw `node:http` is used where a client library would normalise the input
 * (paths such as `/v1/../admin/keys`, odd Host headers, non-ASCII header bytes).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, type RecordedRequest, startMockUpstream } from '../helpers/mock-upstream.ts';

const canary = `sk-CANARY-${randomBytes(12).toString('hex')}`;
registerSecret(canary);

/** Every secret this file puts anywhere; none may appear in the gateway's log. */
const secrets: string[] = [canary];

let upstream: MockUpstream;
let attacker: MockUpstream;
let gw: TestGateway;
let client: OpenAI;
/** A valid non-master virtual key. */
let tenantKey: string;
let tenantKeyId: string;

const user = (content: string) => [{ role: 'user' as const, content }];

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP/1.1 request with the path and headers exactly as given (nothing normalised). */
function raw(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<RawResponse> {
  const { port } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: Number(port), method, path, headers, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes raw bytes on a TCP socket and returns what the server answered (status line + headers). */
function rawSocket(request: Buffer): Promise<string> {
  const { port } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      answer += d;
      if (answer.includes('\r\n\r\n')) socket.end();
    });
    socket.on('end', () => resolve(answer));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.write(request);
  });
}

async function keyCount(): Promise<number> {
  const row = await gw.gateway.context.database.db
    .selectFrom('virtual_keys')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function createKey(body: Record<string, unknown>): Promise<{ id: string; key: string }> {
  const res = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const created = (await res.json()) as { id: string; key: string };
  if (typeof created.key === 'string') {
    registerSecret(created.key);
    secrets.push(created.key);
  }
  assert.equal(res.status, 201, JSON.stringify(created));
  return created;
}

function headerValues(request: RecordedRequest): string[] {
  return Object.values(request.headers).flatMap((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

before(async () => {
  upstream = await startMockUpstream({ requireApiKey: canary });
  attacker = await startMockUpstream();
  gw = await startTestGateway({
    config: {
      providers: { up: { type: 'openai', base_url: upstream.baseUrl, api_key: canary } },
      models: {
        gpt: {
          targets: [{ provider: 'up', model: 'gpt-4o-mini' }],
          timeouts: { first_byte_ms: 2_000, idle_ms: 2_000, total_ms: 10_000 },
          // Many injected faults on one target: these tests are not about breakers or retries.
          retries: { max: 0 },
          circuit_breaker: { enabled: false },
        },
        embed: {
          targets: [{ provider: 'up', model: 'text-embedding-3-small' }],
          retries: { max: 0 },
          circuit_breaker: { enabled: false },
        },
      },
    },
  });
  secrets.push(gw.masterKey);
  client = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
  const tenant = await createKey({ name: 'tenant' });
  tenantKey = tenant.key;
  tenantKeyId = tenant.id;
});

after(async () => {
  await gw?.close();
  await Promise.all([upstream?.close(), attacker?.close()]);
});

beforeEach(() => {
  upstream.reset();
  attacker.reset();
});

describe('SSRF: a request cannot choose its upstream', () => {
  for (const field of ['api_base', 'base_url', 'url', 'azure_endpoint', 'api_key']) {
    test(`"${field}" in a chat body → 400 naming it, nothing leaves the gateway`, async () => {
      const value = field === 'api_key' ? 'sk-attacker-chosen' : attacker.baseUrl;
      await assert.rejects(
        client.chat.completions.create({
          model: 'gpt',
          messages: user('go to the attacker'),
          ...({ [field]: value } as Record<string, unknown>),
        } as OpenAI.ChatCompletionCreateParamsNonStreaming),
        (error: unknown) => {
          assert.ok(error instanceof OpenAI.BadRequestError, String(error));
          assert.equal(error.param, field);
          assert.match(error.message, new RegExp(field));
          return true;
        },
      );
      assert.equal(attacker.requests.length, 0, 'the attacker host was contacted');
      assert.equal(upstream.requests.length, 0, 'the real upstream was contacted');
    });
  }

  test('api_base / base_url in a streaming chat or an embeddings body → 400, nothing leaves', async () => {
    for (const field of ['api_base', 'base_url']) {
      await assert.rejects(
        client.chat.completions.create({
          model: 'gpt',
          stream: true,
          messages: user('stream to the attacker'),
          ...({ [field]: attacker.baseUrl } as Record<string, unknown>),
        } as OpenAI.ChatCompletionCreateParamsStreaming),
        (error: unknown) => error instanceof OpenAI.BadRequestError && error.param === field,
      );
      await assert.rejects(
        client.embeddings.create({
          model: 'embed',
          input: 'embed at the attacker',
          ...({ [field]: attacker.baseUrl } as Record<string, unknown>),
        } as OpenAI.EmbeddingCreateParams),
        (error: unknown) => error instanceof OpenAI.BadRequestError && error.param === field,
      );
    }
    assert.equal(attacker.requests.length, 0);
    assert.equal(upstream.requests.length, 0);
  });

  test('an upstream redirect to another host is not followed (streaming too); our key goes nowhere', async () => {
    for (const stream of [false, true]) {
      upstream.enqueue({ kind: 'redirect', location: `${attacker.baseUrl}/chat/completions`, status: 302 });
      await assert.rejects(
        client.chat.completions.create({ model: 'gpt', stream, messages: user('follow me') }),
        (error: unknown) => error instanceof OpenAI.InternalServerError && error.status === 502,
      );
    }
    const seen = await upstream.waitForRequests(2);
    assert.deepEqual(
      seen.map((r) => r.status),
      [302, 302],
    );
    assert.equal(attacker.requests.length, 0, 'the redirect target was contacted');
  });
});

describe('hostile bearer tokens', () => {
  test('SQL-shaped tokens are 401 and change nothing', async () => {
    const before = await keyCount();
    const tokens = [
      "' OR 1=1 --",
      "x'; DROP TABLE virtual_keys; --",
      '1 UNION SELECT key_hash FROM virtual_keys',
      "sk-' OR '1'='1",
      '"; DELETE FROM usage_ledger; --',
      "x' AND (SELECT 1 FROM (SELECT(SLEEP(5)))a)--",
    ];
    for (const token of tokens) {
      const sdk = new OpenAI({ baseURL: gw.baseUrl, apiKey: token, maxRetries: 0 });
      await assert.rejects(
        sdk.chat.completions.create({ model: 'gpt', messages: user('inject') }),
        (error: unknown) => error instanceof OpenAI.AuthenticationError && error.status === 401,
        `token ${token}`,
      );
      await assert.rejects(
        sdk.models.list(),
        (error: unknown) => error instanceof OpenAI.AuthenticationError,
      );
      // Same through the admin API and through Anthropic's header.
      const admin = await raw('GET', '/admin/keys', { authorization: `Bearer ${token}` });
      assert.equal(admin.status, 401, `admin with ${token}`);
      const viaApiKey = await raw('GET', '/v1/models', { 'x-api-key': token });
      assert.equal(viaApiKey.status, 401, `x-api-key ${token}`);
    }
    assert.equal(upstream.requests.length, 0);
    assert.equal(await keyCount(), before, 'the keys table changed');
  });

  test('non-ASCII junk, control-free unicode bytes and a 100 KB token are refused (401, or 431)', async () => {
    const utf8AsLatin1 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
    const junk = [
      utf8AsLatin1('ключ-🔑-密钥'),
      utf8AsLatin1('sk-\u200b\u200d\u2028\u2029\ufeff'),
      utf8AsLatin1('ｓｋ－ｆｕｌｌｗｉｄｔｈ'),
      '\u00ff\u00fe\u0080\u0085sk',
      `sk-${'a'.repeat(1000)}`,
    ];
    for (const token of junk) {
      const res = await raw('POST', '/v1/chat/completions', {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
      });
      assert.equal(res.status, 401, `token ${JSON.stringify(token.slice(0, 40))}`);
      const body = JSON.parse(res.body) as { error: { type: string } };
      assert.equal(body.error.type, 'authentication_error');
    }
    const huge = `sk-${randomBytes(75_000).toString('base64url')}`.slice(0, 100 * 1024);
    const hugeHeaders: Record<string, string>[] = [
      { authorization: `Bearer ${huge}` },
      { 'x-api-key': huge },
    ];
    for (const headers of hugeHeaders) {
      const res = await raw('GET', '/v1/models', headers);
      assert.ok(res.status === 401 || res.status === 431, `100 KB token → ${res.status}`);
    }
    // Just under Node's 16 KiB header limit, so the gateway itself must answer.
    const big = `sk-${'A'.repeat(15_000)}`;
    const res = await raw('GET', '/v1/models', { authorization: `Bearer ${big}` });
    assert.equal(res.status, 401);
    assert.equal(upstream.requests.length, 0);
  });

  test('one kept-alive connection carrying several credentials (a pooling proxy): each request is its own', async () => {
    // The gateway remembers the credential a connection presented last (its digest); a
    // different one on the same connection must be judged on its own, near misses included.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const { port } = new URL(gw.url);
    const get = (path: string, token: string) =>
      new Promise<{ status: number; localPort: number | undefined }>((resolve, reject) => {
        const req = http.get(
          {
            host: '127.0.0.1',
            port: Number(port),
            path,
            agent,
            headers: { authorization: `Bearer ${token}` },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, localPort: res.socket?.localPort }));
          },
        );
        req.on('error', reject);
      });
    const nearMiss = tenantKey.slice(0, -1) + (tenantKey.endsWith('x') ? 'y' : 'x');
    const steps: Array<[string, string, number]> = [
      ['/admin/keys', gw.masterKey, 200],
      ['/admin/keys', tenantKey, 403],
      ['/v1/models', tenantKey, 200],
      ['/v1/models', nearMiss, 401],
      ['/v1/models', `${tenantKey}x`, 401],
      ['/v1/models', tenantKey.slice(0, -1), 401],
      ['/admin/keys', tenantKey, 403],
      ['/admin/keys', gw.masterKey, 200],
      ['/v1/models', 'sk-sy-not-a-key-at-all', 401],
      ['/admin/keys', gw.masterKey, 200],
    ];
    const ports = new Set<number | undefined>();
    try {
      for (const [path, token, status] of steps) {
        const res = await get(path, token);
        assert.equal(
          res.status,
          status,
          `${path} with ${token === gw.masterKey ? 'the master key' : token === tenantKey ? 'the tenant key' : 'another token'}`,
        );
        ports.add(res.localPort);
      }
    } finally {
      agent.destroy();
    }
    assert.equal(ports.size, 1, 'the requests did not share one connection');
  });

  test('after the hostile tokens the keys table is intact: the master key and a created key still work', async () => {
    const list = await raw('GET', '/admin/keys', { authorization: `Bearer ${gw.masterKey}` });
    assert.equal(list.status, 200);
    const ids = (JSON.parse(list.body) as { data: Array<{ id: string }> }).data.map((k) => k.id);
    assert.ok(ids.includes(tenantKeyId), 'the created key is no longer listed');
    const tenant = new OpenAI({ baseURL: gw.baseUrl, apiKey: tenantKey, maxRetries: 0 });
    const completion = await tenant.chat.completions.create({ model: 'gpt', messages: user('still works') });
    assert.equal(completion.choices[0]?.message.content, 'Echo: still works');
  });
});

describe('admin routes need the master key, whatever the path or headers say', () => {
  const allowed = new Set([400, 401, 403, 404]);
  const credentials = () => [
    { label: 'no key', headers: {} as Record<string, string> },
    { label: 'virtual key', headers: { authorization: `Bearer ${tenantKey}` } },
  ];

  test('control: the master key gets 200 on GET /admin/keys, a virtual key 403, no key 401', async () => {
    assert.equal((await raw('GET', '/admin/keys', { authorization: `Bearer ${gw.masterKey}` })).status, 200);
    assert.equal((await raw('GET', '/admin/keys', { authorization: `Bearer ${tenantKey}` })).status, 403);
    assert.equal((await raw('GET', '/admin/keys')).status, 401);
  });

  test('spoofed Host / X-Forwarded-* / X-Real-IP headers do not open /admin/keys', async () => {
    const variants: Record<string, string>[] = [
      { host: 'localhost' },
      { host: 'admin.internal' },
      { host: '127.0.0.1' },
      { 'x-forwarded-for': '127.0.0.1' },
      { 'x-forwarded-host': 'localhost' },
      { 'x-forwarded-proto': 'https' },
      { 'x-real-ip': '127.0.0.1' },
      { forwarded: 'for=127.0.0.1;host=localhost;proto=https' },
      { host: 'localhost', 'x-forwarded-for': '127.0.0.1', 'x-forwarded-host': 'admin.internal' },
    ];
    for (const variant of variants) {
      for (const cred of credentials()) {
        for (const method of ['GET', 'POST']) {
          const res = await raw(
            method,
            '/admin/keys',
            { ...variant, ...cred.headers, 'content-type': 'application/json' },
            method === 'POST' ? JSON.stringify({ name: 'smuggled' }) : undefined,
          );
          const what = `${method} /admin/keys ${JSON.stringify(variant)} with ${cred.label} → ${res.status}`;
          assert.ok(allowed.has(res.status), what);
          assert.equal(res.status, cred.label === 'no key' ? 401 : 403, what);
        }
      }
    }
  });

  test('path tricks never reach the admin API without the master key', async () => {
    const before = await keyCount();
    const paths = [
      '//admin/keys',
      '/admin//keys',
      '/%61dmin/keys',
      '/admin%2Fkeys',
      '/admin%2fkeys',
      '/admin/keys;',
      '/admin/keys;.json',
      '/admin/keys/',
      '/ADMIN/keys',
      '/Admin/Keys',
      '/v1/../admin/keys',
      '/v1/%2e%2e/admin/keys',
      '/./admin/keys',
      '/admin/./keys',
      '/admin/keys%00',
      '/admin/keys%20',
      '/admin/keys?x=1',
      '/admin/keys#frag',
      '/v1/models/../../admin/keys',
    ];
    for (const path of paths) {
      for (const cred of credentials()) {
        for (const method of ['GET', 'POST']) {
          const res = await raw(
            method,
            path,
            { ...cred.headers, 'content-type': 'application/json' },
            method === 'POST' ? JSON.stringify({ name: 'smuggled' }) : undefined,
          );
          const what = `${method} ${path} with ${cred.label} → ${res.status} ${res.body.slice(0, 120)}`;
          assert.ok(res.status < 200 || res.status >= 300, what);
          assert.ok(allowed.has(res.status), what);
          assert.ok(!res.body.includes(tenantKeyId), `key list leaked: ${what}`);
        }
      }
    }
    // A virtual key may not revoke keys either, whatever the path.
    for (const path of [
      `/admin/keys/${tenantKeyId}`,
      `//admin/keys/${tenantKeyId}`,
      `/admin/keys/${tenantKeyId}/`,
    ]) {
      const res = await raw('DELETE', path, { authorization: `Bearer ${tenantKey}` });
      assert.ok(allowed.has(res.status), `DELETE ${path} → ${res.status}`);
    }
    assert.equal(await keyCount(), before, 'a key was created or deleted through a path trick');
  });

  test('X-Original-URL / X-Rewrite-URL on a /v1 route do not reroute to the admin API', async () => {
    for (const name of ['x-original-url', 'x-rewrite-url', 'x-forwarded-uri', 'x-forwarded-path']) {
      const rewrite = { [name]: '/admin/keys' };
      // No key: the /v1 route's own auth answers.
      const anon = await raw('GET', '/v1/models', rewrite);
      assert.equal(anon.status, 401, `${name} without key`);
      // A virtual key: it gets what /v1/models gives it (models), never the key list.
      const tenant = await raw('GET', '/v1/models', { ...rewrite, authorization: `Bearer ${tenantKey}` });
      assert.equal(tenant.status, 200);
      const body = JSON.parse(tenant.body) as { data: Array<{ object: string; id: string }> };
      assert.ok(
        body.data.every((m) => m.object === 'model'),
        `${name}: not a model list: ${tenant.body}`,
      );
      assert.ok(!tenant.body.includes(tenantKeyId));
      // An unknown /v1 path stays unknown.
      const missing = await raw('GET', '/v1/nothing-here', {
        ...rewrite,
        authorization: `Bearer ${tenantKey}`,
      });
      assert.equal(missing.status, 404);
      const post = await raw(
        'POST',
        '/v1/chat/completions',
        { ...rewrite, authorization: `Bearer ${tenantKey}`, 'content-type': 'application/json' },
        JSON.stringify({ name: 'smuggled' }),
      );
      assert.equal(post.status, 400, `${name}: POST /v1/chat/completions with an admin body`);
    }
  });
});

describe('x-request-id hygiene', () => {
  test('a sane x-request-id is echoed back and forwarded upstream', async () => {
    const id = `req-${randomBytes(4).toString('hex')}_a.b:c`;
    const { response } = await client.chat.completions
      .create({ model: 'gpt', messages: user('trace') }, { headers: { 'x-request-id': id } })
      .withResponse();
    assert.equal(response.headers.get('x-request-id'), id);
    const [seen] = await upstream.waitForRequests(1);
    assert.equal(seen?.headers['x-request-id'], id);
  });

  test('junk or huge x-request-id values are replaced, and never reach the log', async () => {
    const markers: string[] = [];
    const junkOf = (build: (marker: string) => string) => {
      const marker = `rid${randomBytes(6).toString('hex')}`;
      markers.push(marker);
      return build(marker);
    };
    const values = [
      junkOf((m) => `${m}%0D%0AX-Injected:%201`),
      junkOf((m) => `${m}\\r\\n{"level":"fatal"}`),
      junkOf((m) => `${m} with spaces`),
      junkOf((m) => `${m}<script>alert(1)</script>`),
      junkOf((m) => `${m}${Buffer.from('\u2028\u2029\u0085', 'utf8').toString('latin1')}`),
      junkOf((m) => `${m}\u0085`),
      junkOf((m) => `${m}${'x'.repeat(10 * 1024)}`),
      junkOf((m) => m + 'y'.repeat(129 - m.length)),
    ];
    for (const value of values) {
      const res = await raw('GET', '/v1/models', {
        'x-request-id': value,
        authorization: `Bearer ${gw.masterKey}`,
      });
      assert.equal(res.status, 200);
      const echoed = res.headers['x-request-id'];
      assert.ok(typeof echoed === 'string' && UUID.test(echoed), `echoed ${String(echoed).slice(0, 60)}`);
    }
    // A raw CR inside the header value: Node's parser refuses the request outright.
    const crMarker = `rid${randomBytes(6).toString('hex')}`;
    markers.push(crMarker);
    const answer = await rawSocket(
      Buffer.from(
        `GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${gw.masterKey}\r\n` +
          `X-Request-Id: ${crMarker}\rX-Injected: 1\r\nConnection: close\r\n\r\n`,
        'latin1',
      ),
    );
    const statusLine = answer.split('\r\n', 1)[0] ?? '';
    assert.ok(!/ 2\d\d /.test(`${statusLine} `), `bare CR accepted: ${statusLine}`);
    assert.ok(!answer.includes(crMarker), 'the junk was echoed');

    const log = readFileSync(gw.logFile, 'utf8');
    for (const marker of markers)
      assert.ok(!log.includes(marker), `junk request id ${marker} reached the log`);
    assert.ok(!log.includes('X-Injected'));
  });
});

describe('credentials and headers sent upstream', () => {
  test("the client's Authorization / x-api-key / cookies never reach the upstream; the provider key does", async () => {
    const cookie = `session=${randomBytes(12).toString('hex')}`;
    const keyed = new OpenAI({
      baseURL: gw.baseUrl,
      apiKey: tenantKey,
      maxRetries: 0,
      defaultHeaders: { cookie, 'x-forwarded-for': '10.9.8.7' },
    });
    await keyed.chat.completions.create({ model: 'gpt', messages: user('bearer') });
    await keyed.embeddings.create({ model: 'embed', input: 'bearer embed' });
    const stream = await keyed.chat.completions.create({ model: 'gpt', stream: true, messages: user('s') });
    for await (const _ of stream) {
      // drain
    }
    // Anthropic-style x-api-key as the only credential.
    const viaHeader = await raw(
      'POST',
      '/v1/chat/completions',
      { 'x-api-key': tenantKey, 'content-type': 'application/json' },
      JSON.stringify({ model: 'gpt', messages: user('x-api-key') }),
    );
    assert.equal(viaHeader.status, 200);

    const seen = await upstream.waitForRequests(4);
    assert.equal(seen.length, 4);
    for (const request of seen) {
      assert.notEqual(request.behaviour, 'auth', 'the upstream refused the credentials');
      assert.equal(request.headers.authorization, `Bearer ${canary}`);
      assert.equal(request.headers['x-api-key'], undefined);
      assert.equal(request.headers.cookie, undefined);
      assert.equal(request.headers['x-forwarded-for'], undefined);
      for (const value of headerValues(request)) {
        assert.ok(!value.includes(tenantKey), `client key forwarded in ${request.path}`);
        assert.ok(!value.includes(gw.masterKey));
        assert.ok(!value.includes(cookie));
      }
    }
  });

  test('an upstream 401 that quotes our provider key does not leak it to the client', async () => {
    upstream.enqueue({
      kind: 'status',
      status: 401,
      error: { message: `Incorrect API key provided: ${canary}.`, code: 'invalid_api_key' },
    });
    const res = await raw(
      'POST',
      '/v1/chat/completions',
      { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
      JSON.stringify({ model: 'gpt', messages: user('leak?') }),
    );
    assert.equal(res.status, 502);
    assert.ok(!res.body.includes(canary));
    assert.ok(!res.body.includes(canary.slice(-12)));
    for (const value of Object.values(res.headers)) assert.ok(!String(value).includes(canary));
  });
});

describe('prototype pollution', () => {
  const chatBodies = [
    '{"model":"gpt","messages":[{"role":"user","content":"hi"}],"__proto__":{"polluted":1}}',
    '{"model":"gpt","messages":[{"role":"user","content":"hi"}],"constructor":{"prototype":{"polluted":1}}}',
    '{"model":"gpt","messages":[{"role":"user","content":"hi"}],"metadata":{"__proto__":{"polluted":1}}}',
    '{"model":"gpt","messages":[{"role":"user","content":"hi","__proto__":{"polluted":1}}]}',
    '{"model":"gpt","messages":[{"role":"user","content":"hi"}],"\\u005f\\u005fproto\\u005f\\u005f":{"polluted":1}}',
  ];

  for (const [i, body] of chatBodies.entries()) {
    test(`chat body #${i + 1} with a prototype key → 400`, async () => {
      const res = await raw(
        'POST',
        '/v1/chat/completions',
        { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
        body,
      );
      assert.equal(res.status, 400, `${body} → ${res.status} ${res.body}`);
      const parsed = JSON.parse(res.body) as { error: { type: string } };
      assert.equal(parsed.error.type, 'invalid_request_error');
      assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
      assert.equal(upstream.requests.length, 0, 'a poisoned body was forwarded');
    });
  }

  test('admin key creation with a prototype key in metadata → 400, no key created', async () => {
    const before = await keyCount();
    for (const body of [
      '{"name":"p","metadata":{"__proto__":{"polluted":1}}}',
      '{"name":"p","constructor":{"prototype":{"polluted":1}}}',
    ]) {
      const res = await raw(
        'POST',
        '/admin/keys',
        { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
        body,
      );
      assert.equal(res.status, 400, `${body} → ${res.status} ${res.body}`);
    }
    assert.equal(await keyCount(), before);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.equal(Object.getPrototypeOf({}), Object.prototype);
  });
});

describe('logs', () => {
  // Runs last in this file: every secret used above must be absent from the gateway's log.
  test('no secret used in this file appears in the gateway log', async () => {
    await gw.gateway.context.ledger.flush();
    const log = readFileSync(gw.logFile, 'utf8');
    assert.ok(log.length > 0, 'the gateway wrote no log at all');
    assert.ok(log.includes('"msg":"request"'), 'no access lines: is this the right file?');
    for (const secret of secrets) {
      assert.ok(!log.includes(secret), `a secret reached the log (…${secret.slice(-4)})`);
      assert.ok(!log.includes(secret.slice(-16)), `a secret's tail reached the log (…${secret.slice(-4)})`);
    }
  });
});
