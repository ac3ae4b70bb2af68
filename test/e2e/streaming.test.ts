/**
 * Streaming end to end: the official `openai` SDK streaming through the gateway
 * from the mock OpenAI upstream. Proves chunks are relayed as they arrive,
 * usage is always billed (and only shown when asked for), disconnects reach
 * the upstream and are billed as `client_closed`, failures after the first
 * chunk end the stream with an error frame (never silently), failures before
 * it are ordinary HTTP errors, and byte-split SSE is reassembled exactly.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { LedgerRow } from '../../src/ledger/usage-ledger.ts';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

const canary = `sk-CANARY-${randomBytes(12).toString('hex')}`;
registerSecret(canary);

let upstream: MockUpstream;
let gw: TestGateway;
let client: OpenAI;
let ledger: LedgerWatch;

const user = (content: string) => [{ role: 'user' as const, content }];
const newRequestId = (label: string) => `${label}-${randomBytes(6).toString('hex')}`;

/**
 * Resolves when the gateway hands the ledger a row for a request. A row is
 * written when the gateway has finished with an attempt, which can be a few
 * turns of the event loop after the client or the upstream saw the end, so
 * tests wait for this event instead of guessing.
 */
interface LedgerWatch {
  waitFor(requestId: string): Promise<LedgerRow>;
}

function watchLedger(target: TestGateway): LedgerWatch {
  const ledgerInstance = target.gateway.context.ledger;
  const seen = new Map<string, LedgerRow>();
  const waiters = new Map<string, Array<(row: LedgerRow) => void>>();
  const record = ledgerInstance.record.bind(ledgerInstance);
  ledgerInstance.record = (row: LedgerRow): void => {
    record(row);
    // Rows are found by the x-request-id the test sent (the ledger's own id is the gateway's).
    const id = row.clientRequestId ?? row.requestId;
    seen.set(id, row);
    for (const resolve of waiters.get(id) ?? []) resolve(row);
    waiters.delete(id);
  };
  return {
    waitFor(requestId) {
      const row = seen.get(requestId);
      if (row) return Promise.resolve(row);
      return new Promise((resolve) => {
        const list = waiters.get(requestId) ?? [];
        list.push(resolve);
        waiters.set(requestId, list);
      });
    },
  };
}

/** The persisted ledger rows of a request, after flushing the queue to the database. */
async function dbRows(requestId: string) {
  await gw.gateway.context.ledger.flush();
  return gw.gateway.context.database.db
    .selectFrom('usage_ledger')
    .selectAll()
    .where('client_request_id', '=', requestId)
    .orderBy('attempt')
    .execute();
}

function contentOf(chunks: ChatCompletionChunk[]): string {
  return chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
}

const hasContent = (c: ChatCompletionChunk) => (c.choices[0]?.delta.content ?? '') !== '';

/** Iterates a stream to its end or its failure; returns what arrived and the error, if any. */
async function drain(
  stream: AsyncIterable<ChatCompletionChunk>,
): Promise<{ chunks: ChatCompletionChunk[]; error: unknown }> {
  const chunks: ChatCompletionChunk[] = [];
  try {
    for await (const c of stream) chunks.push(c);
  } catch (error) {
    return { chunks, error };
  }
  return { chunks, error: undefined };
}

before(async () => {
  upstream = await startMockUpstream({ requireApiKey: canary });
  gw = await startTestGateway({
    config: {
      providers: { up: { type: 'openai', base_url: upstream.baseUrl, api_key: canary } },
      models: {
        gpt: {
          targets: [{ provider: 'up', model: 'gpt-4o-mini' }],
          timeouts: { first_byte_ms: 2_000, idle_ms: 2_000, total_ms: 20_000 },
          // One fault after another on one target: these tests are about streams, not breakers,
          // and each fault must reach the client rather than a retry.
          retries: { max: 0 },
          circuit_breaker: { enabled: false },
        },
        // Named as the upstream model: its chunks go out as they came (the bytes they came in).
        'gpt-4o-mini': {
          targets: [{ provider: 'up', model: 'gpt-4o-mini' }],
          retries: { max: 0 },
          circuit_breaker: { enabled: false },
        },
        // Short idle timeout, for upstreams that go silent.
        quiet: {
          targets: [{ provider: 'up', model: 'gpt-4o-mini' }],
          timeouts: { first_byte_ms: 2_000, idle_ms: 300, total_ms: 20_000 },
          retries: { max: 0 },
        },
      },
    },
  });
  client = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
  ledger = watchLedger(gw);
});

after(async () => {
  await gw?.close();
  await upstream?.close();
});

beforeEach(() => {
  upstream.reset();
});

describe('relaying', () => {
  test('chunks reach the client while the upstream is still sending', async () => {
    upstream.enqueue({ frames: 5, frameDelayMs: 50 });
    const stream = await client.chat.completions.create({
      model: 'gpt',
      stream: true,
      messages: user('one two three four'),
    });
    const chunks: ChatCompletionChunk[] = [];
    let upstreamStateAtFirstContent: { completed: boolean; status: number | undefined } | undefined;
    for await (const chunk of stream) {
      if (upstreamStateAtFirstContent === undefined && hasContent(chunk)) {
        const rec = upstream.requests[0];
        upstreamStateAtFirstContent = { completed: rec?.completedAt !== undefined, status: rec?.status };
      }
      chunks.push(chunk);
    }
    // The upstream had sent its headers but not finished its body when the client saw content.
    assert.deepEqual(upstreamStateAtFirstContent, { completed: false, status: 200 });
    assert.ok(upstream.requests[0]?.completedAt !== undefined, 'upstream finished by the end');
    assert.equal(chunks.filter(hasContent).length, 5);
    assert.equal(contentOf(chunks), 'Echo: one two three four');
    assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, 'stop');
    for (const c of chunks) {
      assert.equal(c.model, 'gpt');
      assert.equal(c.object, 'chat.completion.chunk');
    }
  });

  test('include_usage: the final chunk carries usage with the real completion_tokens', async () => {
    upstream.enqueue({ frames: 3 });
    const stream = await client.chat.completions.create({
      model: 'gpt',
      stream: true,
      stream_options: { include_usage: true },
      messages: user('count my tokens please'),
    });
    const { chunks, error } = await drain(stream);
    assert.equal(error, undefined);
    const last = chunks.at(-1);
    assert.deepEqual(last?.choices, []);
    assert.equal(last?.usage?.completion_tokens, 3);
    assert.equal(last?.usage?.prompt_tokens, 4 + 3);
    assert.equal(last?.usage?.total_tokens, 10);
    assert.equal(chunks.filter((c) => c.usage).length, 1, 'exactly one usage chunk');
  });

  test('without include_usage no usage reaches the client, but the gateway still asks upstream', async () => {
    upstream.enqueue({ frames: 3 });
    const requestId = newRequestId('no-usage');
    const stream = await client.chat.completions.create(
      { model: 'gpt', stream: true, messages: user('no usage for me') },
      { headers: { 'x-request-id': requestId } },
    );
    const { chunks, error } = await drain(stream);
    assert.equal(error, undefined);
    assert.ok(chunks.length >= 4);
    for (const c of chunks) {
      assert.ok(c.usage === undefined || c.usage === null, `usage leaked: ${JSON.stringify(c)}`);
      assert.ok(c.choices.length > 0, 'a usage-only chunk reached the client');
    }
    const [seen] = await upstream.waitForRequests(1);
    const body = seen?.body as { stream: boolean; stream_options?: { include_usage?: boolean } };
    assert.equal(body.stream, true);
    assert.equal(body.stream_options?.include_usage, true);
    // ...and bills it from the upstream's numbers.
    const row = await ledger.waitFor(requestId);
    assert.equal(row.usageSource, 'upstream');
    assert.equal(row.completionTokens, 3);
  });

  test('a completed stream is billed: ledger row ok, usage_source upstream, tokens = upstream usage', async () => {
    upstream.enqueue({ frames: 4 });
    const requestId = newRequestId('stream-ok');
    const { data: stream, response } = await client.chat.completions
      .create(
        {
          model: 'gpt',
          stream: true,
          stream_options: { include_usage: true },
          messages: [
            { role: 'system', content: 'be nice' },
            { role: 'user', content: 'bill me exactly' },
          ],
        },
        { headers: { 'x-request-id': requestId } },
      )
      .withResponse();
    assert.equal(response.headers.get('x-request-id'), requestId);
    const { chunks, error } = await drain(stream);
    assert.equal(error, undefined);
    const usage = chunks.at(-1)?.usage;
    assert.ok(usage);
    await ledger.waitFor(requestId);
    const rows = await dbRows(requestId);
    assert.equal(rows.length, 1);
    const row = rows[0]!;
    assert.equal(row.status, 'ok');
    assert.equal(row.usage_source, 'upstream');
    assert.equal(row.http_status, 200);
    assert.equal(Number(row.stream), 1);
    assert.equal(row.prompt_tokens, usage.prompt_tokens);
    assert.equal(row.completion_tokens, usage.completion_tokens);
    assert.equal(row.completion_tokens, 4);
    assert.equal(row.model_requested, 'gpt');
    assert.equal(row.model_used, 'gpt-4o-mini');
    assert.equal(row.provider, 'up');
  });

  test('byte-split upstream SSE (inside multi-byte UTF-8 too) gives exactly the unsplit text', async () => {
    const text = 'héllo wörld — 東京タワー 🌍🚀 ✓ naïve 😀 end';
    upstream.enqueue({ text, frames: 9 });
    const reference = contentOf(
      (
        await drain(
          await client.chat.completions.create({ model: 'gpt', stream: true, messages: user('split') }),
        )
      ).chunks,
    );
    assert.equal(reference, text);

    // Every byte offset at once, then a few pseudo-random sets of offsets.
    const everyOffset = Array.from({ length: 4000 }, (_, i) => i + 1);
    let seed = 12345;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    const splitSets = [everyOffset];
    for (let s = 0; s < 6; s++) {
      splitSets.push(Array.from({ length: 12 }, () => 1 + (rand() % 1500)));
    }
    for (const splitAt of splitSets) {
      upstream.enqueue({ text, frames: 9, splitAt });
      const stream = await client.chat.completions.create({
        model: 'gpt',
        stream: true,
        stream_options: { include_usage: true },
        messages: user('split'),
      });
      const { chunks, error } = await drain(stream);
      assert.equal(error, undefined);
      assert.equal(contentOf(chunks), text, `split at ${splitAt.slice(0, 20).join(',')}`);
      assert.equal(chunks.at(-1)?.usage?.completion_tokens, 9);
    }
  });
});

describe('chunks that go out as they came', () => {
  /** The raw SSE body the gateway sends for one streamed request, its `created` stamps evened out. */
  async function rawStream(body: Record<string, unknown>): Promise<string> {
    const res = await fetch(`${gw.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: user('raw'), ...body }),
    });
    assert.equal(res.status, 200);
    return (await res.text()).replace(/"created":\d+/g, '"created":0');
  }

  test('one event a write (relayed in its own bytes) and byte-split (re-encoded) give the same bytes', async () => {
    const text = 'héllo wörld — 東京タワー 🌍🚀 ✓ naïve 😀 "quoted" \\ end';
    for (const include_usage of [false, true]) {
      const shape = { text, frames: 9, completionId: 'chatcmpl-same' };
      upstream.enqueue({ ...shape, frameDelayMs: 5 });
      const whole = await rawStream({ stream_options: { include_usage } });
      upstream.enqueue({ ...shape, splitAt: Array.from({ length: 4000 }, (_, i) => i + 1) });
      const split = await rawStream({ stream_options: { include_usage } });
      assert.equal(whole, split, `include_usage ${include_usage}`);
      const frames = whole.split('\n\n').filter((f) => f.length > 0);
      assert.equal(frames.at(-1), 'data: [DONE]');
      const chunks = frames
        .slice(0, -1)
        .map((f) => JSON.parse(f.slice('data: '.length)) as ChatCompletionChunk);
      assert.equal(contentOf(chunks), text);
      assert.ok(chunks.every((c) => c.model === 'gpt-4o-mini'));
      assert.equal(
        chunks.some((c) => c.usage != null),
        include_usage,
      );
    }
  });
});

describe('client disconnects', () => {
  test('breaking out of the SDK stream mid-way aborts the upstream and bills client_closed', async () => {
    upstream.enqueue({ frames: 40, frameDelayMs: 25 });
    const requestId = newRequestId('break');
    const stream = await client.chat.completions.create(
      { model: 'gpt', stream: true, messages: user('a long answer please') },
      { headers: { 'x-request-id': requestId } },
    );
    let content = 0;
    for await (const chunk of stream) {
      if (hasContent(chunk)) content++;
      if (content === 2) break;
    }
    const aborted = await upstream.waitForAbort();
    assert.equal(aborted.clientAborted, true);
    assert.equal(aborted.completedAt, undefined, 'the upstream was still sending');

    const row = await ledger.waitFor(requestId);
    assert.equal(row.status, 'client_closed');
    const [persisted] = await dbRows(requestId);
    assert.ok(persisted);
    assert.equal(persisted.status, 'client_closed');
    assert.equal(persisted.usage_source, 'estimated');
    assert.equal(persisted.http_status, 499);
    assert.ok(persisted.prompt_tokens > 0, 'prompt tokens estimated');
    assert.ok(persisted.completion_tokens >= 2, 'relayed chunks billed');
    assert.ok(persisted.completion_tokens < 40, 'not billed for frames never relayed');
  });

  test('aborting with an AbortController mid-stream aborts the upstream and bills client_closed', async () => {
    upstream.enqueue({ frames: 40, frameDelayMs: 25 });
    const requestId = newRequestId('abort');
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'gpt', stream: true, messages: user('another long answer') },
      { headers: { 'x-request-id': requestId }, signal: controller.signal },
    );
    let content = 0;
    let threw: unknown;
    try {
      for await (const chunk of stream) {
        if (hasContent(chunk)) content++;
        if (content === 2) controller.abort();
      }
    } catch (error) {
      threw = error;
    }
    // The SDK either ends the iteration quietly or throws its abort error; never an API error.
    assert.ok(threw === undefined || threw instanceof OpenAI.APIUserAbortError, String(threw));
    assert.ok(content >= 2);
    await upstream.waitForAbort();
    const row = await ledger.waitFor(requestId);
    assert.equal(row.status, 'client_closed');
    assert.equal(row.usageSource, 'estimated');
    assert.ok(row.promptTokens > 0 && row.completionTokens >= 2);
  });

  test('aborting a non-streaming request while the upstream hangs aborts the upstream too', async () => {
    upstream.enqueue({ kind: 'slowFirstByte', ms: 60_000 });
    const requestId = newRequestId('json-abort');
    const controller = new AbortController();
    const pending = client.chat.completions.create(
      { model: 'gpt', messages: user('I will not wait') },
      { headers: { 'x-request-id': requestId }, signal: controller.signal },
    );
    await upstream.waitForRequests(1);
    controller.abort();
    await assert.rejects(pending, OpenAI.APIUserAbortError);
    const aborted = await upstream.waitForAbort();
    assert.equal(aborted.status, undefined, 'the upstream never answered');
    await ledger.waitFor(requestId);
    const [row] = await dbRows(requestId);
    assert.ok(row);
    assert.equal(row.status, 'client_closed');
    assert.equal(row.http_status, 499);
    assert.equal(Number(row.stream), 0);
  });
});

describe('client disconnects (continued)', () => {
  test('aborting a stream before its first chunk aborts the upstream and bills client_closed', async () => {
    upstream.enqueue({ kind: 'slowFirstByte', ms: 60_000 });
    const requestId = newRequestId('pre-chunk-abort');
    const controller = new AbortController();
    const pending = client.chat.completions.create(
      { model: 'gpt', stream: true, messages: user('never mind') },
      { headers: { 'x-request-id': requestId }, signal: controller.signal },
    );
    await upstream.waitForRequests(1);
    controller.abort();
    await assert.rejects(pending, OpenAI.APIUserAbortError);
    await upstream.waitForAbort();
    const row = await ledger.waitFor(requestId);
    assert.equal(row.status, 'client_closed');
    assert.equal(row.stream, true);
  });

  test('a client abort is not logged as an unhandled internal error', async () => {
    upstream.enqueue({ kind: 'slowFirstByte', ms: 60_000 }, { kind: 'slowFirstByte', ms: 60_000 });
    const ids = [newRequestId('quiet-abort-json'), newRequestId('quiet-abort-stream')];
    for (const [i, requestId] of ids.entries()) {
      const controller = new AbortController();
      const pending = client.chat.completions.create(
        { model: 'gpt', stream: i === 1, messages: user('bye') },
        { headers: { 'x-request-id': requestId }, signal: controller.signal },
      );
      await upstream.waitForRequests(i + 1);
      controller.abort();
      await assert.rejects(pending, OpenAI.APIUserAbortError);
      await ledger.waitFor(requestId);
    }
    // The ledger row is written just before the route rethrows; the error handler then runs
    // within the same run of microtasks, so one macrotask turn later its log line (if any) is written.
    await new Promise((resolve) => setImmediate(resolve));
    const lines = readFileSync(gw.logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: string; msg: string; requestId?: string });
    const errors = lines.filter((l) => ids.includes(l.requestId ?? '') && l.level === 'error');
    assert.deepEqual(
      errors.map((l) => l.msg),
      [],
      'a client disconnect is normal traffic, not an internal error',
    );
  });
});

describe('upstream failures', () => {
  test('an error frame mid-stream reaches the SDK as APIError; ledger row status error', async () => {
    upstream.enqueue({
      kind: 'errorInStream',
      afterFrames: 2,
      frames: 6,
      error: { message: 'The server had an error while processing your request.', type: 'server_error' },
    });
    const requestId = newRequestId('err-frame');
    const stream = await client.chat.completions.create(
      { model: 'gpt', stream: true, messages: user('fail after two') },
      { headers: { 'x-request-id': requestId } },
    );
    const { chunks, error } = await drain(stream);
    assert.ok(error instanceof OpenAI.APIError, `expected APIError, got ${String(error)}`);
    assert.match(error.message, /server had an error/);
    assert.equal(chunks.filter(hasContent).length, 2, 'the two good chunks were relayed first');
    await ledger.waitFor(requestId);
    const [row] = await dbRows(requestId);
    assert.ok(row);
    assert.equal(row.status, 'error');
    assert.equal(row.error_code, 'upstream_error');
    assert.ok(row.completion_tokens >= 2);
  });

  test('an upstream that closes mid-stream ends the client stream with an error, not silently', async () => {
    upstream.enqueue({ kind: 'resetMidStream', afterFrames: 2, frames: 6 });
    const requestId = newRequestId('cut');
    const stream = await client.chat.completions.create(
      { model: 'gpt', stream: true, messages: user('cut me off') },
      { headers: { 'x-request-id': requestId } },
    );
    const { chunks, error } = await drain(stream);
    assert.ok(error instanceof OpenAI.APIError, `expected APIError, got ${String(error)}`);
    assert.equal(chunks.filter(hasContent).length, 2);
    assert.ok(!chunks.some((c) => c.choices[0]?.finish_reason), 'no finish_reason was invented');
    const row = await ledger.waitFor(requestId);
    assert.equal(row.status, 'error');
  });

  test('an upstream RST mid-stream also surfaces as an error', async () => {
    upstream.enqueue({ kind: 'resetMidStream', afterFrames: 2, frames: 6, rst: true });
    let error: unknown;
    try {
      const stream = await client.chat.completions.create({
        model: 'gpt',
        stream: true,
        messages: user('reset me'),
      });
      error = (await drain(stream)).error;
    } catch (e) {
      // The RST may discard the frames before the gateway read them: then it is a pre-stream 502.
      error = e;
    }
    assert.ok(error instanceof OpenAI.APIError, `expected APIError, got ${String(error)}`);
  });

  test('an upstream 500 before the first chunk is an HTTP 502, not a 200', async () => {
    upstream.enqueue({ kind: 'status', status: 500 });
    const requestId = newRequestId('pre-500');
    await assert.rejects(
      client.chat.completions.create(
        { model: 'gpt', stream: true, messages: user('fail first') },
        { headers: { 'x-request-id': requestId } },
      ),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.InternalServerError, String(error));
        assert.equal(error.status, 502);
        assert.equal(error.type, 'upstream_error');
        return true;
      },
    );
    const row = await ledger.waitFor(requestId);
    assert.equal(row.status, 'error');
    assert.equal(row.httpStatus, 502);
  });

  test('an upstream 4xx on a stream request reaches the client as that 4xx, not a 200', async () => {
    upstream.enqueue({
      kind: 'status',
      status: 400,
      error: { message: 'This model does not support tools.', param: 'tools', code: null },
    });
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt', stream: true, messages: user('tools?') }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError, String(error));
        assert.match(error.message, /does not support tools/);
        assert.equal(error.param, 'tools');
        return true;
      },
    );
  });

  test('an upstream that goes silent mid-stream ends the stream with a timeout error frame', async () => {
    // Find where the third SSE event ends in this exact answer, by asking the mock directly.
    const shape = { frames: 6, completionId: 'chatcmpl-quiet' };
    const body = {
      model: 'gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
      messages: user('go quiet'),
    };
    upstream.enqueue(shape);
    const probe = await fetch(`${upstream.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${canary}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const bytes = Buffer.from(await probe.arrayBuffer());
    let cut = 0;
    for (let i = 0; i < 3; i++) cut = bytes.indexOf('\n\n', cut) + 2;
    assert.ok(cut > 2 && cut < bytes.length);
    upstream.reset();

    // Same answer, but after those three events the upstream says nothing for 10 s (idle_ms is 300).
    upstream.enqueue({ ...shape, splitAt: [cut], frameDelayMs: 10_000 });
    const requestId = newRequestId('quiet');
    const stream = await client.chat.completions.create(
      { model: 'quiet', stream: true, messages: user('go quiet') },
      { headers: { 'x-request-id': requestId } },
    );
    const { chunks, error } = await drain(stream);
    assert.ok(error instanceof OpenAI.APIError, `expected APIError, got ${String(error)}`);
    assert.equal(error.code, 'upstream_timeout');
    assert.equal(chunks.filter(hasContent).length, 2, 'role + two content frames were relayed');
    await upstream.waitForAbort();
    const row = await ledger.waitFor(requestId);
    assert.equal(row.errorCode, 'upstream_timeout');
    // Same classification as a timeout before the first chunk (see dispatch.ts).
    assert.equal(row.status, 'timeout');
  });

  test('an upstream 200 SSE that never sends a frame times out as an HTTP error, not a 200', async () => {
    // hangAfterHeaders: 200 + SSE headers, then silence; idle_ms turns it into a timeout.
    upstream.enqueue({ kind: 'hangAfterHeaders' });
    const requestId = newRequestId('silent');
    await assert.rejects(
      client.chat.completions.create(
        { model: 'quiet', stream: true, messages: user('silence') },
        { headers: { 'x-request-id': requestId } },
      ),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.InternalServerError, String(error));
        assert.equal(error.status, 504);
        return true;
      },
    );
    const row = await ledger.waitFor(requestId);
    assert.equal(row.status, 'timeout');
  });
});
