import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('upstream timeouts and connection failures', () => {
  let upstream: MockUpstream;
  let gw: TestGateway;
  let client: OpenAI;
  const apiKey = 'sk-CANARY-timeouts-0123456789';

  before(async () => {
    registerSecret(apiKey);
    upstream = await startMockUpstream();
    const port = await closedPort();
    gw = await startTestGateway({
      config: {
        providers: {
          up: { type: 'openai', base_url: upstream.baseUrl, api_key: apiKey },
          nowhere: { type: 'openai', base_url: `http://127.0.0.1:${port}/v1`, api_key: apiKey },
        },
        models: {
          short: {
            targets: [{ provider: 'up', model: 'gpt-4o-mini' }],
            timeouts: { first_byte_ms: 5_000, idle_ms: 5_000, total_ms: 400 },
            // The timeout itself must reach the client, not a retry.
            retries: { max: 0 },
          },
          refused: { targets: [{ provider: 'nowhere', model: 'gpt-4o-mini' }] },
        },
      },
    });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  test('a body slower than total_ms ends in 504 and the upstream call is aborted', async () => {
    upstream.enqueue({ delayMs: 30_000, path: '/chat/completions' });
    await assert.rejects(
      client.chat.completions.create({ model: 'short', messages: [{ role: 'user', content: 'slow body' }] }),
      (error: unknown) => error instanceof OpenAI.InternalServerError && error.status === 504,
    );
    const aborted = await upstream.waitForAbort();
    assert.equal(aborted.clientAborted, true);
  });

  test('a stream that outlives total_ms ends with an in-stream timeout error, not a silent close', async () => {
    upstream.enqueue({ frames: 100, frameDelayMs: 50, path: '/chat/completions' });
    const stream = await client.chat.completions.create({
      model: 'short',
      stream: true,
      messages: [{ role: 'user', content: 'endless' }],
    });
    let text = '';
    const failure = await (async () => {
      try {
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    assert.ok(failure instanceof OpenAI.APIError, `expected an APIError, got ${String(failure)}`);
    assert.match(failure.message, /timeout/i);
    assert.ok(text.length > 0, 'some content was relayed before the deadline');
    await upstream.waitForAbort();
  });

  test('connection refused is a 502 in OpenAI shape', async () => {
    const res = await fetch(`${gw.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'refused', messages: [{ role: 'user', content: 'anyone?' }] }),
    });
    assert.equal(res.status, 502);
    const body = (await res.json()) as { error: { code: string; type: string } };
    assert.equal(body.error.code, 'upstream_connect_failed');
    assert.equal(body.error.type, 'upstream_error');
  });
});
